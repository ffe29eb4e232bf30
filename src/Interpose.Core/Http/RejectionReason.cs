namespace Interpose.Core.Http;

/// <summary>Every reason the HTTP/1.1 codec rejects a message. Closed list; <see cref="RejectionStatus"/> maps each to a status code.</summary>
public enum RejectionReason
{
    /// <summary>The request line is not <c>method SP request-target SP HTTP-version CRLF</c> (RFC 9112 §3).</summary>
    InvalidRequestLine,

    /// <summary>The method is empty or not a token (RFC 9110 §9.1).</summary>
    InvalidMethod,

    /// <summary>The request-target is empty, holds whitespace, control or non-ASCII bytes, or has the wrong form for the method (RFC 9112 §3.2).</summary>
    InvalidRequestTarget,

    /// <summary>The request line exceeds <see cref="Http1Limits.MaxRequestLineLength"/> (414, RFC 9112 §3).</summary>
    RequestLineTooLong,

    /// <summary>The version is well formed but neither HTTP/1.0 nor HTTP/1.1 (505, RFC 9110 §15.6.6).</summary>
    UnsupportedHttpVersion,

    /// <summary>The status line is not <c>HTTP-version SP 3DIGIT SP reason CRLF</c> (RFC 9112 §4).</summary>
    InvalidStatusLine,

    /// <summary>The status line exceeds <see cref="Http1Limits.MaxRequestLineLength"/>.</summary>
    StatusLineTooLong,

    /// <summary>A field name is empty, not a token, or the line has no colon (RFC 9110 §5.1).</summary>
    InvalidHeaderName,

    /// <summary>Whitespace between a field name and the colon (RFC 9112 §5.1: MUST reject with 400).</summary>
    WhitespaceBeforeColon,

    /// <summary>A field line starts with whitespace: obs-fold, or whitespace before the first field (RFC 9112 §5.2, §2.2).</summary>
    ObsoleteLineFolding,

    /// <summary>A field value holds NUL or another control character other than HTAB (RFC 9110 §5.5).</summary>
    InvalidHeaderValue,

    /// <summary>A CR not followed by LF (RFC 9112 §2.2: MUST treat as invalid).</summary>
    BareCarriageReturn,

    /// <summary>An LF not preceded by CR; RFC 9112 §2.2 allows accepting it, Interpose does not (desync risk).</summary>
    BareLineFeed,

    /// <summary>The header section exceeds <see cref="Http1Limits.MaxHeaderBytes"/> (431, RFC 6585 §5).</summary>
    HeadersTooLarge,

    /// <summary>More than <see cref="Http1Limits.MaxHeaderCount"/> fields (431).</summary>
    TooManyHeaders,

    /// <summary>An HTTP/1.1 request without Host (RFC 9112 §3.2: MUST respond 400).</summary>
    MissingHost,

    /// <summary>More than one Host field line (RFC 9112 §3.2: MUST respond 400).</summary>
    MultipleHost,

    /// <summary>The Host value is not <c>uri-host [ ":" port ]</c> (RFC 9112 §3.2).</summary>
    InvalidHost,

    /// <summary>Both Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3 item 3).</summary>
    ContentLengthWithTransferEncoding,

    /// <summary>A Content-Length element that is not <c>0</c> or <c>[1-9][0-9]*</c>, or overflows (RFC 9110 §8.6).</summary>
    InvalidContentLength,

    /// <summary>Content-Length values that differ (RFC 9112 §6.3 item 5).</summary>
    ConflictingContentLength,

    /// <summary>Transfer-Encoding with a syntax error, an empty list, parameters, or chunked applied twice (RFC 9112 §6.1, §7).</summary>
    InvalidTransferEncoding,

    /// <summary>A request transfer coding Interpose does not know (RFC 9112 §6.1: SHOULD respond 501).</summary>
    UnsupportedTransferCoding,

    /// <summary>A request whose final transfer coding is not chunked (RFC 9112 §6.3 item 4: MUST respond 400).</summary>
    TransferEncodingNotChunkedLast,

    /// <summary>Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1: MUST treat the framing as faulty).</summary>
    TransferEncodingInHttp10,

    /// <summary>A chunk size that is empty or not hex (RFC 9112 §7.1: chunk-size = 1*HEXDIG).</summary>
    InvalidChunkSize,

    /// <summary>A chunk size with more than <see cref="Http1Limits.MaxChunkSizeDigits"/> digits or above <see cref="long.MaxValue"/> (RFC 9112 §7.1: guard against overflow).</summary>
    ChunkSizeOverflow,

    /// <summary>Chunk extensions longer than <see cref="Http1Limits.MaxChunkExtensionLength"/>.</summary>
    ChunkExtensionTooLong,

    /// <summary>A chunk extension holding a control byte, a bare CR or a bare LF (RFC 9112 §7.1.1).</summary>
    InvalidChunkExtension,

    /// <summary>Chunk data not followed by CRLF, or a chunk-size line not ended by CRLF (RFC 9112 §7.1).</summary>
    InvalidChunkTerminator,

    /// <summary>The trailer section exceeds <see cref="Http1Limits.MaxTrailerBytes"/> or <see cref="Http1Limits.MaxHeaderCount"/>.</summary>
    TrailersTooLarge,
}
