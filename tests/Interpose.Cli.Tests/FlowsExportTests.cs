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
}
