using System.Text;

namespace Interpose.Core.Http;

/// <summary>
/// The request-target and field values of the previous head parsed on one connection, by position, so that a
/// keep-alive peer repeating them (the same User-Agent, Accept, Cookie, Host ... on every request, as clients do) gets
/// the same immutable strings instead of new ones: the parse of a repeated head allocates no strings. A string is
/// reused only when the bytes are the same, so a change in any value is seen; hooks never see this cache.
/// </summary>
internal sealed class Http1StringReuse
{
    /// <summary>Field lines remembered, by position: the first 32 cover the heads clients and origins send.</summary>
    private const int MaxFields = 32;

    /// <summary>
    /// Longest value remembered, in bytes: with <see cref="MaxFields"/>, an idle connection holds at most 32 × 256
    /// characters (16 KiB) this way, whatever the header limits; longer values are parsed into new strings every time.
    /// </summary>
    private const int MaxValueLength = 256;

    private readonly string?[] _values = new string?[MaxFields];
    private string? _target;

    /// <summary>The request-target as a string: the previous one when the bytes are equal.</summary>
    public string Target(ReadOnlySpan<byte> ascii) => Reuse(ref _target, ascii);

    /// <summary>The value of the field line at <paramref name="index"/> as a string: the previous one at that
    /// position when the bytes are equal.</summary>
    public string Value(int index, ReadOnlySpan<byte> latin1)
    {
        if (latin1.IsEmpty)
        {
            return string.Empty;
        }

        return index < MaxFields ? Reuse(ref _values[index], latin1) : Encoding.Latin1.GetString(latin1);
    }

    /// <summary>The string in <paramref name="slot"/> when it holds these bytes, else a new one, remembered there if short.</summary>
    private static string Reuse(ref string? slot, ReadOnlySpan<byte> latin1)
    {
        // Ascii.Equals is false for any byte above 0x7F, so obs-text values are simply not reused.
        if (slot is { } previous && Ascii.Equals(latin1, previous))
        {
            return previous;
        }

        var text = Encoding.Latin1.GetString(latin1);
        slot = latin1.Length <= MaxValueLength ? text : null;
        return text;
    }
}
