namespace Interpose.Core.Http;

/// <summary>
/// Where an incomplete head scan stopped, so the next attempt on the same, grown buffer resumes there instead of
/// re-reading everything received so far. Without it a peer sending one byte per packet makes every attempt rescan
/// the whole partial head: quadratic work up to the header limits (a slowloris CPU amplifier).
/// </summary>
/// <remarks>Valid only while the buffer passed in starts at the same byte; the parse methods reset it when they return
/// a head. Call <see cref="Reset"/> before reusing it for a different connection or after an exception.</remarks>
public struct Http1HeadScan
{
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

    /// <summary>Forgets all progress.</summary>
    public void Reset() => this = default;
}
