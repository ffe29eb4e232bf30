using Interpose.Proxy.Rules;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>
/// The spec strings of the rule flags, as mitmproxy parses them (mitmproxy/utils/spec.py and each addon's parser, and
/// the cases of its test_mapremote.py, test_maplocal.py, test_modifyheaders.py, test_modifybody.py, test_blocklist.py):
/// what is accepted, and that each bad spec says what is wrong.
/// </summary>
public sealed class RuleSpecTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("interpose-rulespec-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(":example.org/images/:mitmproxy.org/img/", null, "example.org/images/")]
    [InlineData("|~q|example\\.org|localhost", "~q", "example\\.org")]
    [InlineData("/~d x/a/b/c", "~d x", "a")] // split at most twice: the replacement keeps the separator
    public void Map_remote_splits_filter_regex_and_replacement(string spec, string? filter, string regex)
    {
        var rule = MapRemoteRule.Parse(spec);

        Assert.Equal(filter, rule.Filter?.Expression);
        Assert.Equal(regex, rule.Pattern.ToString());
        Assert.Equal(spec, rule.Spec);
    }

    [Theory]
    [InlineData("https://example.org/images/test.jpg", ":example.org/images/:mitmproxy.org/img/", "https://mitmproxy.org/img/test.jpg")]
    [InlineData("http://a.test/x/y", @"|//a\.test/(\w)/|//b.test/\1\1/", "http://b.test/xx/y")]
    [InlineData("http://a.test/x/y", @"|//a\.test/(?P<first>\w)/|//b.test/\g<first>$/", "http://b.test/x$/y")]
    [InlineData("http://a.test/aaa", "|a|b", "http://b.test/bbb")] // re.sub replaces every match
    public void Map_remote_replaces_as_pythons_re_sub(string url, string spec, string expected) =>
        Assert.Equal(expected, MapRemoteRule.Parse(spec).Apply(url));

    [Theory]
    [InlineData("", "empty spec")]
    [InlineData("|", "empty spec")]
    [InlineData("|only-one", "invalid number of parameters")]
    [InlineData("/~b/one/two/three", "invalid filter pattern '~b'")] // split at most twice: "~b" is the filter
    [InlineData("|~x|a|b", "invalid filter pattern '~x'")]
    [InlineData("|a[|b", "invalid regular expression 'a['")]
    [InlineData(@"|a|b\", "a backslash at the end")]
    public void Bad_map_remote_specs_say_what_is_wrong(string spec, string problem)
    {
        var error = Assert.Throws<FormatException>(() => MapRemoteRule.Parse(spec));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/~u index.html/TOOMANY/300", "invalid number of parameters")]
    [InlineData(":~d ~d ~d:200", "invalid filter pattern")]
    [InlineData("/~u index.html/abc", "invalid HTTP status code 'abc'")]
    [InlineData("/~u index.html/999", "invalid HTTP status code '999'")]
    [InlineData("/~u index.html/100", "invalid HTTP status code '100'")]
    [InlineData("/~u index.html", "invalid number of parameters")]
    public void Bad_block_list_specs_say_what_is_wrong(string spec, string problem)
    {
        var error = Assert.Throws<FormatException>(() => BlockListRule.Parse(spec));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(":~u example.org:404", 404)]
    [InlineData("|~d ads|444", 444)]
    [InlineData("/!jpg/200", 200)]
    public void Block_list_takes_a_filter_and_a_status(string spec, int status) =>
        Assert.Equal(status, BlockListRule.Parse(spec).StatusCode);

    [Theory]
    [InlineData("/~q/one/two", "~q", "one", "two")]
    [InlineData("/~s/one/", "~s", "one", "")]
    [InlineData("|X-Both|yes", null, "X-Both", "yes")]
    [InlineData("|X-A|caf\u00E9", null, "X-A", "caf\u00E9")] // Latin-1 is a valid field value (obs-text, RFC 9110 §5.5)
    public void Modify_headers_splits_name_and_value(string spec, string? filter, string name, string value)
    {
        var rule = ModifyHeadersRule.Parse(spec);

        Assert.Equal(filter, rule.Filter?.Expression);
        Assert.Equal(name, rule.Name);
        Assert.Equal(value, rule.Value);
    }

    [Theory]
    [InlineData("|~q|bad name|x", "invalid header name 'bad name'")]
    [InlineData("|~q||x", "invalid header name ''")]
    [InlineData("|~q|X-A|a\nb", "line break")]
    [InlineData("|X-A|\u20AC", "above U+00FF")] // HttpHeaders.Add would refuse it on every message
    [InlineData("|~q|X-A|@/nonexistent/file", "invalid file path: /nonexistent/file")]
    [InlineData("|~q ~~|X-A|b", "invalid filter pattern")]
    public void Bad_modify_headers_specs_say_what_is_wrong(string spec, string problem)
    {
        var error = Assert.Throws<FormatException>(() => ModifyHeadersRule.Parse(spec));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_at_file_whose_value_no_message_could_carry_is_refused_at_parse_time()
    {
        var file = Path.Combine(_dir.FullName, "euro.txt");
        await File.WriteAllTextAsync(file, "\u20AC 5\n");

        var error = Assert.Throws<FormatException>(() => ModifyHeadersRule.Parse("|~q|X-A|@" + file));

        Assert.Contains("invalid header value in " + file, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Modify_headers_reads_an_at_file_at_each_use()
    {
        var file = Path.Combine(_dir.FullName, "value.txt");
        await File.WriteAllTextAsync(file, "first\n");
        var rule = ModifyHeadersRule.Parse("|~q|X-A|@" + file);

        var first = await rule.ReadValueAsync(CancellationToken.None);
        await File.WriteAllTextAsync(file, "second");
        var second = await rule.ReadValueAsync(CancellationToken.None);

        Assert.Equal(("first", "second"), (first, second));
    }

    [Theory]
    [InlineData("/foo/bar", "foo foo", "bar bar")]
    [InlineData("/(fo)o/\\1\\1", "foo", "fofo")]
    [InlineData("/a.b/X", "a\nb", "X")] // DOTALL, as mitmproxy
    [InlineData("/café/tea", "un café", "un tea")] // a non-ASCII pattern matches its UTF-8 bytes
    [InlineData("/x/$1", "x", "$1")] // a $ is literal in a Python template
    public async Task Modify_body_replaces_in_bytes(string spec, string body, string expected)
    {
        var result = await ModifyBodyRule.Parse(spec).ApplyAsync(System.Text.Encoding.UTF8.GetBytes(body), CancellationToken.None);

        Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(result));
    }

    [Theory]
    [InlineData("/foo(/x", "invalid regular expression")]
    [InlineData("|foo|@/nonexistent", "invalid file path: /nonexistent")]
    [InlineData("/~zz/foo/bar", "invalid filter pattern")]
    public void Bad_modify_body_specs_say_what_is_wrong(string spec, string problem)
    {
        var error = Assert.Throws<FormatException>(() => ModifyBodyRule.Parse(spec));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("|/nonexistent-dir-of-interpose|", "invalid file path")]
    [InlineData("|a(|.", "invalid regular expression")]
    public void Bad_map_local_specs_say_what_is_wrong(string specStart, string problem)
    {
        var spec = specStart.EndsWith('|') ? specStart + "x" : specStart;
        var error = Assert.Throws<FormatException>(() => MapLocalRule.Parse(spec.Replace("|.", "|" + _dir.FullName, StringComparison.Ordinal)));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    // mitmproxy test_maplocal.py test_file_candidates, with /tmp as the directory.
    [Theory]
    [InlineData("https://example.com/foo", ":example.com/foo:{0}", new[] { "index.html" })]
    [InlineData("https://example.com/foo/bar", ":example.com/foo:{0}", new[] { "bar", "bar/index.html" })]
    [InlineData("https://example.com/foo/bar", ":example.com/foo/:{0}", new[] { "bar", "bar/index.html" })]
    [InlineData("https://example.com/foo/bar", ":example.com/foo/(.*):{0}", new[] { "bar", "bar/index.html" })]
    [InlineData("https://example.com/foo/bar?query", ":example.com/foo/(.*):{0}", new[] { "bar?query", "bar?query/index.html", "bar_query", "bar_query/index.html" })]
    [InlineData("https://example.com/foo/bar/baz.jpg", ":example.com/foo:{0}", new[] { "bar/baz.jpg", "bar/baz.jpg/index.html" })]
    [InlineData("https://example.com/foo/bar.jpg", ":example.com/foo/:{0}", new[] { "bar.jpg", "bar.jpg/index.html" })]
    [InlineData("https://example.com/foo/bar.jpg?query", ":example.com/foo/:{0}", new[] { "bar.jpg", "bar.jpg/index.html" })]
    [InlineData("https://example.com/foo/bar%20baz", ":example.com/foo/:{0}", new[] { "bar baz", "bar baz/index.html", "bar_baz", "bar_baz/index.html" })]
    public void Map_local_candidates_are_mitmproxys(string url, string spec, string[] expected)
    {
        var rule = MapLocalRule.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, spec, _dir.FullName));

        Assert.Equal(expected.Select(name => Path.Join(rule.LocalPath, name)), rule.Candidates(url));
    }

    [Theory]
    [InlineData("https://example.com/foo/../etc/passwd")]
    [InlineData("https://example.com/foo/bar/%2e%2e/%2e%2e/etc/passwd")]
    [InlineData("https://example.com/foo/..%2f..%2fetc/passwd")]
    [InlineData("https://example.com/foo/%2fetc/passwd")]
    [InlineData("https://example.com/foo/a%00b")]
    public void Map_local_refuses_names_that_leave_the_directory(string url)
    {
        var rule = MapLocalRule.Parse(":example.com/foo/(.*):" + _dir.FullName);

        Assert.Null(rule.Candidates(url));
    }

    [Fact]
    public void Real_path_resolves_links_at_every_level()
    {
        var inside = Directory.CreateDirectory(Path.Combine(_dir.FullName, "inside"));
        var outside = Directory.CreateDirectory(Path.Combine(_dir.FullName, "outside"));
        File.CreateSymbolicLink(Path.Combine(inside.FullName, "up"), "../outside");
        File.CreateSymbolicLink(Path.Combine(inside.FullName, "loop"), "loop");

        Assert.Equal(Path.Combine(outside.FullName, "f"), LocalFiles.RealPath(Path.Combine(inside.FullName, "up", "f")));
        Assert.Null(LocalFiles.RealPath(Path.Combine(inside.FullName, "loop", "f")));
        Assert.Equal(Path.Combine(inside.FullName, "new", "f"), LocalFiles.RealPath(Path.Combine(inside.FullName, "new", "f")));
    }
}
