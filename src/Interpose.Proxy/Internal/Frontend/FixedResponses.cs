using System.Globalization;
using System.Text;

namespace Interpose.Proxy.Internal;

/// <summary>Pre-built answers the proxy gives on its own, before (or instead of) reading anything else.</summary>
internal static class FixedResponses
{
    /// <summary>A complete <c>Connection: close</c> response with a one-line plain-text reason.</summary>
    public static byte[] Create(int status, string reason, string extraHeaders = "")
    {
        var body = "Interpose: " + reason + "\n";
        return Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 {status} {ReasonPhrases.For(status)}\r\n{extraHeaders}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}"));
    }
}
