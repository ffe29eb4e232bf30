using System.Globalization;
using Interpose.Core.Filters;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>--block-list |filter|status</c>: a request that matches the filter is answered with the status
/// (empty body) and never reaches the origin; status 444 closes the client connection without any answer (nginx's
/// convention, as mitmproxy does).
/// </summary>
public sealed class BlockListRule
{
    /// <summary>The status that means "close the connection without an answer" (nginx's 444, mitmproxy's NO_RESPONSE).</summary>
    public const int NoResponse = 444;

    private BlockListRule(string spec, FlowFilter filter, int statusCode)
    {
        Spec = spec;
        Filter = filter;
        StatusCode = statusCode;
    }

    /// <summary>The spec the rule was parsed from.</summary>
    public string Spec { get; }

    /// <summary>The requests to block.</summary>
    public FlowFilter Filter { get; }

    /// <summary>The status to answer with, or <see cref="NoResponse"/>.</summary>
    public int StatusCode { get; }

    /// <summary>Parses <c>SEP filter SEP status</c> (the first character is the separator), e.g. <c>|~d ads\.example|404</c>.</summary>
    /// <param name="spec">The spec.</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> is null.</exception>
    /// <exception cref="FormatException">Not two parts, the filter does not parse, or the status is not a final status
    /// code (200-599) or 444; the message says which.</exception>
    public static BlockListRule Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = RuleSpec.Split(spec, 3);
        if (parts.Length != 2)
        {
            throw new FormatException("invalid number of parameters (2 are expected: |filter|status, e.g. |~d ads\\.example|404)");
        }

        // mitmproxy accepts the codes it knows; a hook's response here must be a final one (RFC 9110 §15: 1xx are interim).
        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status) || status is < 200 or > 599)
        {
            throw new FormatException($"invalid HTTP status code '{parts[1]}' (200-599, or 444 to close without an answer)");
        }

        return new BlockListRule(spec, RuleSpec.ParseFilter(parts[0]), status);
    }

    /// <inheritdoc/>
    public override string ToString() => Spec;
}
