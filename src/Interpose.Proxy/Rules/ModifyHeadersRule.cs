using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>--modify-headers [|filter]|name|value</c>: in a request or response that matches, every field
/// called <c>name</c> is removed and, unless the value is empty, one field <c>name: value</c> is added. Without a filter
/// the rule applies to requests and to responses; <c>~q</c> limits it to requests and <c>~s</c> to responses, as in
/// mitmproxy. A value <c>@path</c> is read from that file each time it applies (trailing line breaks dropped).
/// </summary>
public sealed class ModifyHeadersRule
{
    private ModifyHeadersRule(string spec, FlowFilter? filter, string name, string value, string? valueFile)
    {
        Spec = spec;
        Filter = filter;
        Name = name;
        Value = value;
        ValueFile = valueFile;
    }

    /// <summary>The spec the rule was parsed from.</summary>
    public string Spec { get; }

    /// <summary>The messages the rule applies to; null for all, requests and responses.</summary>
    public FlowFilter? Filter { get; }

    /// <summary>The field name.</summary>
    public string Name { get; }

    /// <summary>The value; empty removes the field. Empty when <see cref="ValueFile"/> is set.</summary>
    public string Value { get; }

    /// <summary>The file the value is read from, or null.</summary>
    public string? ValueFile { get; }

    /// <summary>Parses <c>[SEP filter] SEP name SEP value</c> (the first character is the separator), e.g.
    /// <c>|~q|User-Agent|interpose</c>, <c>/~s/Server/</c> (remove) or <c>|X-Token|@token.txt</c>.</summary>
    /// <param name="spec">The spec.</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> is null.</exception>
    /// <exception cref="FormatException">Wrong number of parts, a filter that does not parse, a name that is not a
    /// field name, a value (or an @file's content) with a line break, NUL or a character above U+00FF, or an @file that
    /// does not exist or cannot be read; the message says which.</exception>
    public static ModifyHeadersRule Parse(string spec)
    {
        var parsed = RuleSpec.Parse(spec);
        // RFC 9110 §5.1: a field name is a token.
        if (parsed.Subject.Length == 0 || !HttpChars.IsToken(parsed.Subject))
        {
            throw new FormatException($"invalid header name '{parsed.Subject}' (a token: letters, digits and !#$%&'*+-.^_`|~)");
        }

        var file = RuleSpec.FilePath(parsed.Replacement);
        var value = file is null ? parsed.Replacement : "";
        CheckValue(value);
        if (file is not null)
        {
            // Read now as well as at each use: a file whose value every message would refuse stops the start (exit 2)
            // rather than turning every matching exchange into a 502.
            CheckValue(ReadFile(file), file);
        }

        return new ModifyHeadersRule(spec, parsed.Filter, parsed.Subject, value, file);
    }

    /// <summary>The value to set now: <see cref="Value"/>, or the file's content.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="FormatException">The file's content is not a valid field value.</exception>
    internal async ValueTask<string> ReadValueAsync(CancellationToken cancellationToken)
    {
        if (ValueFile is null)
        {
            return Value;
        }

        var value = (await File.ReadAllTextAsync(ValueFile, Encoding.UTF8, cancellationToken)).TrimEnd('\r', '\n');
        CheckValue(value, ValueFile);
        return value;
    }

    /// <inheritdoc/>
    public override string ToString() => Spec;

    private static string ReadFile(string path)
    {
        try
        {
            return File.ReadAllText(path, Encoding.UTF8).TrimEnd('\r', '\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"invalid file path: {path} ({ex.Message})", ex);
        }
    }

    private static void CheckValue(string value, string? file = null)
    {
        // The rule HttpHeaders.Add applies when the field is added: RFC 9110 §5.5, CR, LF and NUL are never allowed in
        // a field value (they would split or end the field); a character above U+00FF cannot be sent as Latin-1.
        if (!HttpHeaders.IsValidValue(value))
        {
            throw new FormatException($"invalid header value{(file is null ? "" : " in " + file)}: it contains a line break, NUL or a character above U+00FF (not Latin-1)");
        }
    }
}
