using Microsoft.Data.Sqlite;

namespace Interpose.Cli.Tests;

/// <summary><c>interpose flows export -o</c>: what it writes to a file.</summary>
public sealed class FlowsExportTests : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const string Har = """
        {"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z",
          "request":{"method":"GET","url":"http://a.test/","headers":[{"name":"Cookie","value":"session=secret"}]},
          "response":{"status":200,"content":{"text":"ok"}}}]}}
        """;

    private readonly TempDirectory _temp = new();

    private string Home => _temp.File("home");

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("har")]
    [InlineData("curl")]
    public async Task An_export_is_written_owner_only_even_over_a_readable_file(string format)
    {
        // Recorded flows carry cookies and tokens: the store is 0600, so is what is exported from it.
        var har = _temp.File("in.har");
        await File.WriteAllTextAsync(har, Har);
        var store = _temp.File("flows.db");
        var import = await CliRun.RunAsync(Home, "flows", "import", har, "-o", store);
        Assert.True(import.ExitCode == 0, import.ToString());
        var fresh = _temp.File("fresh." + format);
        var existing = _temp.File("existing." + format);
        await File.WriteAllTextAsync(existing, "old");
        File.SetUnixFileMode(existing, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        foreach (var output in new[] { fresh, existing })
        {
            var export = await CliRun.RunAsync(Home, "flows", "export", store, "--format", format, "-o", output);

            Assert.True(export.ExitCode == 0, export.ToString());
            Assert.Contains("session=secret", await File.ReadAllTextAsync(output), StringComparison.Ordinal);
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(output));
        }

        // No temp file is left beside them.
        Assert.DoesNotContain(Directory.GetFiles(_temp.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("har", "HAR")]
    [InlineData("curl", "curl script")]
    public async Task An_export_the_store_fails_midway_says_standard_output_is_cut_short_and_leaves_a_file_as_it_was(string format, string what)
    {
        // Two flows, the second one's row damaged: the first is written, then the store fails. On standard output the
        // first flow is already out, so a reader of the pipe must be told the export is incomplete, not only why.
        var har = _temp.File("in.har");
        await File.WriteAllTextAsync(har, """
            {"log":{"version":"1.2","entries":[
              {"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a.test/first"},"response":{"status":200}},
              {"startedDateTime":"2025-01-01T00:00:01Z","request":{"method":"GET","url":"http://a.test/second"},"response":{"status":200}}]}}
            """);
        var store = _temp.File("flows.db");
        var import = await CliRun.RunAsync(Home, "flows", "import", har, "-o", store);
        Assert.True(import.ExitCode == 0, import.ToString());
        using (var connection = new SqliteConnection($"Data Source={store};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE flows SET flow = x'7b7d' WHERE url = 'http://a.test/second'"; // JSON without its type
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        var stdout = await CliRun.RunAsync(Home, "flows", "export", store, "--format", format);

        Assert.Equal(CliErrors.UserError, stdout.ExitCode);
        Assert.Contains("http://a.test/first", stdout.Stdout, StringComparison.Ordinal);
        var line = Assert.Single(stdout.StderrLines);
        Assert.StartsWith($"interpose: the {what} written to standard output is incomplete: ", line, StringComparison.Ordinal);
        Assert.Contains("a stored flow does not read back", line, StringComparison.Ordinal);

        // To a file: written beside it and renamed over it only once complete, so an existing file keeps what it had.
        var existing = _temp.File("existing." + format);
        await File.WriteAllTextAsync(existing, "old");
        var toFile = await CliRun.RunAsync(Home, "flows", "export", store, "--format", format, "-o", existing);

        Assert.Equal(CliErrors.UserError, toFile.ExitCode);
        Assert.Contains("a stored flow does not read back", Assert.Single(toFile.StderrLines), StringComparison.Ordinal);
        Assert.Equal("old", await File.ReadAllTextAsync(existing));
        Assert.DoesNotContain(Directory.GetFiles(_temp.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }
}
