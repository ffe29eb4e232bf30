using Interpose.Core.Http;

namespace Interpose.Core.Tests;

public class HttpHeadersTests
{
    [Fact]
    public void Lookup_is_case_insensitive_and_keeps_order_and_spelling()
    {
        var h = new HttpHeaders();
        h.Add("Set-Cookie", "a=1");
        h.Add("X-Other", "x");
        h.Add("set-cookie", "b=2");
        Assert.Equal(3, h.Count);
        Assert.True(h.Contains("SET-COOKIE"));
        Assert.False(h.Contains("Cookie"));
        Assert.Equal("a=1", h.Get("SET-cookie"));
        Assert.Null(h.Get("missing"));
        Assert.True(h.TryGet("x-other", out string? v));
        Assert.Equal("x", v);
        Assert.False(h.TryGet("nope", out _));
        Assert.Equal(["a=1", "b=2"], h.GetValues("Set-Cookie"));
        Assert.Empty(h.GetValues("nope"));
        Assert.Equal("set-cookie", h[2].Name);
    }

    [Fact]
    public void Set_replaces_the_first_in_place_and_removes_the_rest()
    {
        var h = new HttpHeaders();
        h.Add("A", "1");
        h.Add("X", "1");
        h.Add("B", "2");
        h.Add("x", "2");
        h.Set("X", "new");
        Assert.Equal([new HttpHeader("A", "1"), new HttpHeader("X", "new"), new HttpHeader("B", "2")], h);
        h.Set("C", "3");
        Assert.Equal(new HttpHeader("C", "3"), h[3]);
    }

    [Fact]
    public void Remove_insert_remove_at_and_clear()
    {
        var h = new HttpHeaders();
        h.Add("A", "1");
        h.Add("a", "2");
        h.Add("B", "3");
        Assert.Equal(2, h.Remove("A"));
        Assert.Equal(0, h.Remove("A"));
        h.Insert(0, "Z", "0");
        Assert.Equal([new HttpHeader("Z", "0"), new HttpHeader("B", "3")], h);
        h.RemoveAt(0);
        Assert.Equal("B", h[0].Name);
        h.Clear();
        Assert.Empty(h);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bad Name")]
    [InlineData("Bad:Name")]
    [InlineData("Bad\r\nName")]
    [InlineData("N\u00e9")]
    public void Add_rejects_names_that_are_not_tokens(string name)
    {
        var h = new HttpHeaders();
        Assert.Throws<ArgumentException>(() => h.Add(name, "v"));
        Assert.Throws<ArgumentException>(() => h.Set(name, "v"));
        Assert.Throws<ArgumentException>(() => h.Insert(0, name, "v"));
        Assert.Empty(h);
    }

    [Theory]
    [InlineData("a\rb")]
    [InlineData("a\nb")]
    [InlineData("a\0b")]
    [InlineData("\u0100")]
    public void Add_rejects_values_with_cr_lf_nul_or_non_latin1(string value)
    {
        var h = new HttpHeaders();
        Assert.Throws<ArgumentException>(() => h.Add("X", value));
        Assert.Throws<ArgumentException>(() => h.Set("X", value));
        Assert.Empty(h);
    }

    [Fact]
    public void Foreach_uses_the_struct_enumerator()
    {
        var h = new HttpHeaders();
        h.Add("A", "1");
        h.Add("B", "2");
        List<HttpHeader>.Enumerator e = h.GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.Equal("A", e.Current.Name);
        int count = 0;
        foreach (HttpHeader header in h)
        {
            count += header.Value.Length;
        }

        Assert.Equal(2, count);
    }

    [Fact]
    public void A_clone_keeps_order_case_and_duplicates_and_is_independent_of_the_original()
    {
        var h = new HttpHeaders();
        h.Add("X-Case", "1");
        h.Add("set-cookie", "a=1");
        h.Add("Set-Cookie", "b=2");

        var copy = h.Clone();
        h.Add("Later", "x");
        h.Remove("X-Case");

        Assert.Equal([("X-Case", "1"), ("set-cookie", "a=1"), ("Set-Cookie", "b=2")], copy.Select(f => (f.Name, f.Value)));
        Assert.Equal(2, h.Count(f => f.Name.Equals("set-cookie", StringComparison.OrdinalIgnoreCase)));
    }
}
