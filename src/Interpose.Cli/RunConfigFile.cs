using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Interpose.Cli;

/// <summary>
/// <c>config.json</c> in the configuration directory (beside the CA), as mitmproxy's <c>config.yaml</c>: JSON with
/// comments, one key per <c>interpose run</c> flag (its long name without the dashes; <c>_</c> may stand for <c>-</c>),
/// a value where the flag takes one, an array where it is repeatable, true/false for a switch. A flag given on the
/// command line wins over the file's key (a repeatable one replaces the file's list). <c>--options</c> prints the
/// effective options in the same format. An unknown key or a bad value is a user error that names the key.
/// </summary>
internal static class RunConfigFile
{
    /// <summary>The file's name in the configuration directory.</summary>
    public const string FileName = "config.json";

    /// <summary>
    /// The largest config file read: 1 MiB, far above any hand-written one (a few KiB), so that a wrong file (a log, a
    /// capture) is refused instead of read whole.
    /// </summary>
    private const long MaxFileBytes = 1024 * 1024;

    /// <summary><c>--options</c>: print the effective options and exit.</summary>
    public static Option<bool> PrintOptions { get; } = new("--options")
    {
        Description = $"Print the effective options (flags, then {FileName} in the configuration directory, then defaults) as {FileName} and exit",
    };

    /// <summary>
    /// <c>--set KEY=VALUE</c> (mitmproxy's <c>--set option=value</c>): any key of the file on the command line, as if
    /// its flag had been given (a switch takes true or false); repeatable, a repeatable key's values accumulate.
    /// </summary>
    public static Option<string[]> Set { get; } = new("--set")
    {
        Description = $"Set an option by its {FileName} key: KEY=VALUE (e.g. anticache=true, map_local='|x|./y'); repeatable",
        HelpName = "KEY=VALUE",
    };

    /// <summary>The keys the file set for this run (for <c>--options</c>), and its path; empty without a file.</summary>
    private static readonly HashSet<string> s_fromFile = [];
    private static string? s_path;

    /// <summary>
    /// When <paramref name="parsed"/> is <c>interpose run</c> and the configuration directory has a config file, the
    /// arguments with the file's keys added for every flag not given; otherwise <paramref name="parsed"/> itself.
    /// </summary>
    /// <exception cref="CliUsageException">The file cannot be read, is not a JSON object, has an unknown key or a bad
    /// value; the message names the file and the key.</exception>
    public static ParseResult Merge(RootCommand root, ParseResult parsed, IReadOnlyList<string> args)
    {
        if (parsed.CommandResult.Command is not { Name: "run" } run)
        {
            return parsed;
        }

        if (parsed.GetValue(Set) is { Length: > 0 } settings)
        {
            List<string> expanded = [.. args, .. SetTokens(root, run, settings)];
            args = expanded;
            parsed = root.Parse(expanded);
        }

        var path = Path.Combine(CliOptions.ResolveHome(parsed), FileName);
        if (!File.Exists(path))
        {
            return parsed;
        }

        s_path = path;
        using var document = Read(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new CliUsageException($"{path}: expected a JSON object of flag names and values");
        }

        var flags = Flags(run);
        var added = new List<string>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            var key = property.Name.Replace('_', '-');
            if (!flags.TryGetValue(key, out var option))
            {
                throw new CliUsageException($"{path}: unknown key '{property.Name}' (the keys are interpose run's long flag names without '--', e.g. \"listen\", \"map-local\"; see interpose run --options)");
            }

            // RFC 8259 §4: names within an object SHOULD be unique; which of two would win is not obvious, so neither does.
            if (!seen.TryAdd(key, property.Name))
            {
                throw new CliUsageException($"{path}: key '{property.Name}' is given twice (also as '{seen[key]}'); keep one");
            }

            if (parsed.GetResult(option) is { Implicit: false })
            {
                continue; // the command line wins
            }

            var tokens = Tokens(path, property.Name, option, property.Value);
            if (tokens.Count == 0)
            {
                continue;
            }

            Check(root, tokens, $"{path}: key '{property.Name}'");

            s_fromFile.Add(option.Name);
            added.AddRange(tokens);
        }

        return added.Count == 0 ? parsed : root.Parse([.. args, .. added]);
    }

    /// <summary>The flags that <c>--set KEY=VALUE</c> pairs stand for, each checked as a key of the file is.</summary>
    /// <exception cref="CliUsageException">A pair has no '=', an unknown key, or a value its flag does not accept.</exception>
    private static List<string> SetTokens(RootCommand root, Command run, string[] settings)
    {
        var flags = Flags(run);
        var tokens = new List<string>();
        foreach (var setting in settings)
        {
            var equals = setting.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new CliUsageException($"--set: '{setting}': expected KEY=VALUE");
            }

            var key = setting[..equals];
            var value = setting[(equals + 1)..];
            if (!flags.TryGetValue(key.Replace('_', '-'), out var option))
            {
                throw new CliUsageException($"--set: unknown key '{key}' (the keys are interpose run's long flag names without '--', as in {FileName}; see interpose run --options)");
            }

            if (option.ValueType == typeof(bool) && value is not ("true" or "false"))
            {
                throw new CliUsageException($"--set: key '{key}': expected true or false, not '{value}'");
            }

            string[] pair = [option.Name, value];
            Check(root, pair, $"--set: key '{key}'");
            tokens.AddRange(pair);
        }

        return tokens;
    }

    /// <summary>Each key on its own, so that a bad value is reported with its key rather than as a flag never typed.</summary>
    private static void Check(RootCommand root, IReadOnlyList<string> tokens, string where)
    {
        var check = root.Parse(["run", .. tokens]);
        if (check.Errors.Count > 0)
        {
            throw new CliUsageException($"{where}: {check.Errors[0].Message}");
        }
    }

    /// <summary>
    /// Writes the effective options of <c>run</c> to standard output as a config file, one key per line with where its
    /// value came from in a comment; returns 0.
    /// </summary>
    public static int Print(Command run, ParseResult result)
    {
        var lines = new List<string>();
        foreach (var (key, option) in Flags(run))
        {
            var value = option.Name == "--proxy-auth" ? Redacted(result.GetValue<string[]>(option.Name)) : result.GetValue<object?>(option.Name);
            var source = result.GetResult(option) is { Implicit: false }
                ? s_fromFile.Contains(option.Name) ? FileName : "command line"
                : "default";
            lines.Add($"  {Json(key)}: {Json(value)},  // {source}");
        }

        // The last member has no comma (JSON with comments, not trailing commas, is what other tools read).
        lines[^1] = lines[^1].Replace(",  //", "  //", StringComparison.Ordinal);
        Console.Out.WriteLine("// interpose run --options" + (s_path is null ? "" : " (" + s_path + ")"));
        Console.Out.WriteLine("{");
        foreach (var line in lines)
        {
            Console.Out.WriteLine(line);
        }

        Console.Out.WriteLine("}");
        return 0;
    }

    /// <summary>Where <paramref name="option"/>'s value came from, for an error message: the file's key or the flag.</summary>
    public static string Describe(Option option) =>
        s_fromFile.Contains(option.Name) ? $"{s_path}: key '{option.Name[2..]}'" : option.Name;

    /// <summary>The long names without dashes of <paramref name="run"/>'s flags (--help excluded), in declaration order.</summary>
    private static Dictionary<string, Option> Flags(Command run)
    {
        var flags = new Dictionary<string, Option>(StringComparer.Ordinal);
        foreach (var option in run.Options)
        {
            if (option.Name.StartsWith("--", StringComparison.Ordinal) && option.Name != "--help" && option != PrintOptions && option != Set && !option.Hidden)
            {
                flags[option.Name[2..]] = option;
            }
        }

        return flags;
    }

    private static JsonDocument Read(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.Length > MaxFileBytes)
            {
                throw new CliUsageException($"{path}: larger than {MaxFileBytes} bytes; not a config file?");
            }

            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new CliUsageException($"{path}: not valid JSON: {ex.Message}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A file the user cannot read (another user's, mode 0600) is their error to fix: one line, exit 2.
            throw new CliUsageException($"{path}: cannot be read: {ex.Message}");
        }
    }

    /// <summary>The command-line tokens for one key.</summary>
    private static List<string> Tokens(string path, string key, Option option, JsonElement value)
    {
        var name = option.Name;
        var isSwitch = option.ValueType == typeof(bool);
        var repeatable = option.Arity.MaximumNumberOfValues > 1;
        var tokens = new List<string>();
        switch (value.ValueKind)
        {
            case JsonValueKind.Null:
                break;
            case JsonValueKind.True or JsonValueKind.False when isSwitch:
                tokens.AddRange([name, value.ValueKind == JsonValueKind.True ? "true" : "false"]);
                break;
            case JsonValueKind.String or JsonValueKind.Number when !isSwitch:
                tokens.AddRange([name, Scalar(value)]);
                break;
            case JsonValueKind.Array when repeatable:
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
                    {
                        throw new CliUsageException($"{path}: key '{key}': the list may hold only strings and numbers");
                    }

                    tokens.AddRange([name, Scalar(item)]);
                }

                break;
            default:
                throw new CliUsageException($"{path}: key '{key}': expected {(isSwitch ? "true or false" : repeatable ? "a string or a list of strings" : "a string or a number")}");
        }

        return tokens;
    }

    private static string Scalar(JsonElement value) => value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();

    private static string[]? Redacted(string[]? users) => users?.Select(u => u.Split(':')[0] + ":(hidden)").ToArray();

    private static string Json(object? value)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            WriteValue(json, value);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNullValue();
                break;
            case bool flag:
                json.WriteBooleanValue(flag);
                break;
            case int number:
                json.WriteNumberValue(number);
                break;
            case FileSystemInfo file:
                json.WriteStringValue(file.FullName);
                break;
            case string text:
                json.WriteStringValue(text);
                break;
            case System.Collections.IEnumerable list:
                json.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(json, item);
                }

                json.WriteEndArray();
                break;
            default:
                json.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary>Adds <c>--options</c> to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(PrintOptions);
        command.Options.Add(Set);
    }
}
