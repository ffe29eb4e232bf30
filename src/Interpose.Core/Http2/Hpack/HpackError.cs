using System.Runtime.CompilerServices;

namespace Interpose.Core.Http2.Hpack;

/// <summary>HPACK decoding errors. RFC 9113 §4.3: "A decoding error in a field block MUST be treated as a connection
/// error of type COMPRESSION_ERROR" — after one, the decoder's table is unusable and the connection must end.</summary>
internal static class HpackError
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Http2ConnectionException Decoding(string message) => new(Http2ErrorCode.CompressionError, message);
}
