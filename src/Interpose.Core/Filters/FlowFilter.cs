namespace Interpose.Core.Filters;

/// <summary>
/// A parsed filter expression in mitmproxy's filter language (<c>~d example\.com &amp; !~c 200</c>), ready to match
/// flows. Parse once, match many times: the regular expressions are compiled by <see cref="Parse"/>, and
/// <see cref="Matches"/> allocates nothing. Instances are immutable and safe to share between threads.
/// The language is documented in docs/filters.md.
/// </summary>
public sealed class FlowFilter
{
    private FlowFilter(string expression, FilterNode root, FlowFilterOptions options)
    {
        Expression = expression;
        Root = root;
        Options = options;
    }

    /// <summary>The deepest nesting of parentheses and <c>!</c> that <see cref="Parse"/> accepts.</summary>
    public const int MaxNestingDepth = FilterParser.MaxNestingDepth;

    /// <summary>The longest expression, in characters, that <see cref="Parse"/> accepts.</summary>
    public const int MaxExpressionLength = FilterParser.MaxExpressionLength;

    /// <summary>The text the filter was parsed from.</summary>
    public string Expression { get; }

    /// <summary>The syntax tree.</summary>
    public FilterNode Root { get; }

    /// <summary>The options the filter was compiled with.</summary>
    public FlowFilterOptions Options { get; }

    /// <summary>Parses <paramref name="expression"/>.</summary>
    /// <param name="expression">The filter text.</param>
    /// <param name="options">Case rule and match timeout; <see cref="FlowFilterOptions.Default"/> when null.</param>
    /// <returns>The filter.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="expression"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The options' match timeout is not positive.</exception>
    /// <exception cref="FilterSyntaxException">The expression is empty, malformed, too long or too deeply nested, or a
    /// regular expression in it does not compile; the exception gives the position and what was expected.</exception>
    public static FlowFilter Parse(string expression, FlowFilterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(expression);
        options ??= FlowFilterOptions.Default;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.MatchTimeout, TimeSpan.Zero, nameof(options));
        return new FlowFilter(expression, FilterParser.Parse(expression, options), options);
    }

    /// <summary>Whether <paramref name="flow"/> matches the filter.</summary>
    /// <param name="flow">The flow.</param>
    /// <returns><see langword="true"/> when it matches.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A regular expression ran longer
    /// than <see cref="FlowFilterOptions.MatchTimeout"/>; the flow should be treated as failing the filter's owner
    /// (a rule or a query), not as a match or a non-match.</exception>
    public bool Matches(IFilterableFlow flow) => Root.Matches(flow);

    /// <summary>The expression as parsed.</summary>
    /// <returns><see cref="Expression"/>.</returns>
    public override string ToString() => Expression;
}
