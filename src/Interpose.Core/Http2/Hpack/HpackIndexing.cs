namespace Interpose.Core.Http2.Hpack;

/// <summary>How <see cref="HpackEncoder"/> represents one field (RFC 7541 §6).</summary>
public enum HpackIndexing
{
    /// <summary>The encoder decides: a table match is indexed; authorization, proxy-authorization and short cookies are
    /// never indexed (RFC 7541 §7.1.3); other fields are added to the dynamic table when they fit.</summary>
    Auto,

    /// <summary>Literal with incremental indexing (§6.2.1) unless the table holds the exact field.</summary>
    Incremental,

    /// <summary>Literal without indexing (§6.2.2): the table is not touched.</summary>
    WithoutIndexing,

    /// <summary>Literal never indexed (§6.2.3): sensitive values; every hop must keep this representation.</summary>
    NeverIndexed,
}
