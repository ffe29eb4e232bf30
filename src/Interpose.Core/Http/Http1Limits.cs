namespace Interpose.Core.Http;

/// <summary>Size and count caps the HTTP/1.1 codec enforces while parsing, before any unbounded scan.</summary>
public sealed record Http1Limits
{
    /// <summary>Default request-line (and status-line) cap: 8 KiB, nginx <c>large_client_header_buffers 4 8k</c>
    /// and Kestrel <c>MaxRequestLineSize</c>.</summary>
    public const int DefaultMaxRequestLineLength = 8 * 1024;

    /// <summary>Default header-section cap: 32 KiB, Kestrel <c>MaxRequestHeadersTotalSize</c>.</summary>
    public const int DefaultMaxHeaderBytes = 32 * 1024;

    /// <summary>Default header-field count cap: 100, Kestrel <c>MaxRequestHeaderCount</c> and Envoy <c>max_headers_count</c>.</summary>
    public const int DefaultMaxHeaderCount = 100;

    /// <summary>Default cap on one chunk's extensions: 1 KiB, in the spirit of the Go (CVE-2023-39326) and
    /// Node (CVE-2024-22019) fixes, which bound extension bytes instead of allowing them unbounded.</summary>
    public const int DefaultMaxChunkExtensionLength = 1024;

    /// <summary>Default trailer-section cap: 32 KiB, the same budget Kestrel gives the header section.</summary>
    public const int DefaultMaxTrailerBytes = 32 * 1024;

    /// <summary>Default cap on chunk-size hex digits: 16, enough for any 63-bit size; llhttp and Kestrel reject longer sizes too.</summary>
    public const int DefaultMaxChunkSizeDigits = 16;

    /// <summary>The defaults above.</summary>
    public static Http1Limits Default { get; } = new();

    /// <summary>Longest accepted request line or status line, in bytes, excluding CRLF (414 when exceeded).</summary>
    public int MaxRequestLineLength { get; init; } = DefaultMaxRequestLineLength;

    /// <summary>Largest accepted header section, in bytes, counting every field line with its CRLF and the final CRLF (431).</summary>
    public int MaxHeaderBytes { get; init; } = DefaultMaxHeaderBytes;

    /// <summary>Most header field lines accepted (431).</summary>
    public int MaxHeaderCount { get; init; } = DefaultMaxHeaderCount;

    /// <summary>Longest accepted chunk-extension text after the chunk size, in bytes.</summary>
    public int MaxChunkExtensionLength { get; init; } = DefaultMaxChunkExtensionLength;

    /// <summary>Largest accepted trailer section, in bytes, including its final CRLF.</summary>
    public int MaxTrailerBytes { get; init; } = DefaultMaxTrailerBytes;

    /// <summary>Most hex digits accepted in a chunk size (leading zeros count).</summary>
    public int MaxChunkSizeDigits { get; init; } = DefaultMaxChunkSizeDigits;
}
