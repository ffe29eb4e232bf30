namespace Interpose.Core.Http;

/// <summary>
/// Where an incomplete head scan stopped, so the next attempt on the same, grown buffer resumes there instead of
/// re-reading everything received so far. Without it a peer sending one byte per packet makes every attempt rescan
/// the whole partial head: quadratic work up to the header limits (a slowloris CPU amplifier).
/// </summary>
/// <remarks>Valid only while the buffer passed in starts at the same byte; the parse methods reset it when they return
/// a head. Call <see cref="Reset"/> before reusing it for a different connection or after an exception. Kept for a
/// connection's life, it also lets the next head on the connection reuse the previous head's strings where the bytes
/// are the same (see <see cref="Reset"/>).</remarks>
public struct Http1HeadScan
{
    private Http1StringReuse? _strings;
    private bool _single;

    internal ScanPhase Phase;
    internal long LineStart;
    internal long SearchFrom;
    internal int LeadingEmptyLines;
    internal long StartLineOffset;
    internal int StartLineLength;
    internal long HeaderStart;
    internal int FieldCount;

    internal enum ScanPhase
    {
        Leading,
        StartLine,
        Fields,
    }

    /// <summary>The previous head's strings, created on the first head parsed with this scan; none for a scan made by
    /// <see cref="ForOneHead"/>, which no later head will share.</summary>
    internal Http1StringReuse? Strings => _single ? null : _strings ??= new Http1StringReuse();

    /// <summary>A scan for a single parse (the overloads without a scan): it keeps no strings for a next head.</summary>
    internal static Http1HeadScan ForOneHead() => new() { _single = true };

    /// <summary>Forgets all progress. The previous head's strings stay: they are reused only for equal bytes.</summary>
    public void Reset()
    {
        var strings = _strings;
        this = default;
        _strings = strings;
    }
}
