namespace Interpose.Core.Http2;

/// <summary>The result of <see cref="Http2Preface.Match"/>.</summary>
public enum PrefaceMatch
{
    /// <summary>The bytes so far match; more are needed.</summary>
    Incomplete,

    /// <summary>The whole 24-octet preface is present.</summary>
    Complete,

    /// <summary>The bytes are not the HTTP/2 preface.</summary>
    Mismatch,
}
