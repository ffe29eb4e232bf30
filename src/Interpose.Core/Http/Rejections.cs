using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Interpose.Core.Http;

/// <summary>Throw sites kept out of line so the parsing loops stay small and inlinable.</summary>
internal static class Rejections
{
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(RejectionReason reason, bool inResponse = false) =>
        throw new HttpProtocolException(reason, inResponse);

    /// <summary>For call sites that must end in a <c>throw</c> expression to satisfy flow analysis.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static HttpProtocolException Create(RejectionReason reason, bool inResponse = false) =>
        new(reason, inResponse);
}
