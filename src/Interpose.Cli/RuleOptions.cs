using System.CommandLine;
using System.Text.RegularExpressions;
using Interpose.Proxy;
using Interpose.Proxy.Rules;

namespace Interpose.Cli;

/// <summary>
/// mitmproxy's rule flags on <c>interpose run</c> (<c>--map-local</c>, <c>--map-remote</c>, <c>--modify-headers</c>,
/// <c>--modify-body</c>, <c>--block-list</c>, <c>--anticache</c>, <c>--anticomp</c>, <c>--allow-hosts</c>), all
/// repeatable, turned into a <see cref="RulesAddon"/> and <see cref="ProxyOptions.AllowHosts"/>. docs/rules.md.
/// </summary>
internal static class RuleOptions
{
    /// <summary>How long an --allow-hosts pattern may run on one name: as --ignore-hosts (a hot path, per tunnel).</summary>
    private static readonly TimeSpan HostPatternTimeout = TimeSpan.FromMilliseconds(100);

    public static Option<string[]> MapLocal { get; } = new("--map-local")
    {
        Description = "Answer from a local file or directory: [|FILTER]|URL-REGEX|PATH (first character is the separator); repeatable",
        HelpName = "SPEC",
    };

    public static Option<string[]> MapRemote { get; } = new("--map-remote")
    {
        Description = "Rewrite the URL before connecting: [|FILTER]|URL-REGEX|REPLACEMENT; repeatable",
        HelpName = "SPEC",
    };

    public static Option<string[]> ModifyHeaders { get; } = new("--modify-headers")
    {
        Description = "Set a header (empty value removes it, @FILE reads it; ~q/~s choose the side): [|FILTER]|NAME|VALUE; repeatable",
        HelpName = "SPEC",
    };

    public static Option<string[]> ModifyBody { get; } = new("--modify-body")
    {
        Description = "Replace a regex in decoded bodies (@FILE reads the replacement): [|FILTER]|REGEX|REPLACEMENT; repeatable",
        HelpName = "SPEC",
    };

    public static Option<string[]> BlockList { get; } = new("--block-list")
    {
        Description = "Answer matching requests with STATUS without contacting the origin (444 closes): |FILTER|STATUS; repeatable",
        HelpName = "SPEC",
    };

    public static Option<bool> AntiCache { get; } = new("--anticache") { Description = "Remove If-None-Match and If-Modified-Since from requests" };

    public static Option<bool> AntiComp { get; } = new("--anticomp") { Description = "Ask origins not to compress (Accept-Encoding: identity)" };

    public static Option<string[]> AllowHosts { get; } = new("--allow-hosts")
    {
        Description = "Intercept only hosts matching this regex (host or host:port); other TLS is relayed untouched; repeatable",
        HelpName = "REGEX",
    };

    public static Option<string?> StickyCookie { get; } = new("--stickycookie")
    {
        Description = "Keep cookies set by responses and send them on later requests matching this filter",
        HelpName = "FILTER",
    };

    public static Option<string?> StickyAuth { get; } = new("--stickyauth")
    {
        Description = "Keep the Authorization header of requests per host and add it to later requests matching this filter that have none",
        HelpName = "FILTER",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { MapLocal, MapRemote, ModifyHeaders, ModifyBody, BlockList, AntiCache, AntiComp, StickyCookie, StickyAuth, AllowHosts })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Parses the flags into <paramref name="options"/>: a <see cref="RulesAddon"/> when any rule is given.</summary>
    /// <exception cref="CliUsageException">A value is invalid; the message names the flag, the value and the problem.</exception>
    public static void Apply(ParseResult result, ProxyOptions options)
    {
        var rules = new RulesAddon
        {
            MapLocal = Parse(result, MapLocal, MapLocalRule.Parse),
            MapRemote = Parse(result, MapRemote, MapRemoteRule.Parse),
            ModifyHeaders = Parse(result, ModifyHeaders, ModifyHeadersRule.Parse),
            ModifyBody = Parse(result, ModifyBody, ModifyBodyRule.Parse),
            BlockList = Parse(result, BlockList, BlockListRule.Parse),
            AntiCache = result.GetValue(AntiCache),
            AntiComp = result.GetValue(AntiComp),
            StickyCookie = result.GetValue(StickyCookie) is { } filter ? ParseFilter(StickyCookie, filter) : null,
            StickyAuth = result.GetValue(StickyAuth) is { } authFilter ? ParseFilter(StickyAuth, authFilter) : null,
        };
        if (rules.AntiCache || rules.AntiComp || rules.StickyCookie is not null || rules.StickyAuth is not null || rules.MapLocal.Count + rules.MapRemote.Count + rules.ModifyHeaders.Count + rules.ModifyBody.Count + rules.BlockList.Count > 0)
        {
            options.Addons.Add(rules);
        }

        foreach (var pattern in result.GetValue(AllowHosts) ?? [])
        {
            try
            {
                options.AllowHosts.Add(new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, HostPatternTimeout));
            }
            catch (ArgumentException ex)
            {
                throw new CliUsageException($"{RunConfigFile.Describe(AllowHosts)}: '{pattern}' is not a valid regular expression: {ex.Message}");
            }
        }
    }

    /// <summary>A filter flag's value, or one usage line naming the flag (never the parser's exception and its stack).</summary>
    /// <exception cref="CliUsageException">The filter does not parse.</exception>
    internal static Core.Filters.FlowFilter ParseFilter(Option option, string text)
    {
        try
        {
            return Core.Filters.FlowFilter.Parse(text);
        }
        catch (Core.Filters.FilterSyntaxException ex)
        {
            throw new CliUsageException($"{RunConfigFile.Describe(option)}: '{text}': invalid filter pattern: {ex.Message}");
        }
    }

    private static T[] Parse<T>(ParseResult result, Option<string[]> option, Func<string, T> parse)
    {
        var specs = result.GetValue(option) ?? [];
        var rules = new T[specs.Length];
        for (var i = 0; i < specs.Length; i++)
        {
            try
            {
                rules[i] = parse(specs[i]);
            }
            catch (FormatException ex)
            {
                throw new CliUsageException($"{RunConfigFile.Describe(option)}: '{specs[i]}': {ex.Message}");
            }
        }

        return rules;
    }
}
