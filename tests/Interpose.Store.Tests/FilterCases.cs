namespace Interpose.Store.Tests;

/// <summary>The filters both stores' query tests run against their sample flows: indexed columns, LIKE scans, bodies,
/// heads, regular expressions, negation and grouping. Each store's test adds the cases only its samples have.</summary>
public static class FilterCases
{
    public static TheoryData<string> Common() =>
    [
        "~c 404",
        "!~c 200",
        "~m POST",
        "~d example.com & ~s",
        "~u /api/ | ~c 500",
        "~q",
        "~b world",
        "~bs \"not found\"",
        "~h content-encoding",
        "~u \"^https://[a-z]+\\.test/\"",
        "~e",
        "~all",
        "~m \"^(GET|DELETE)$\" & !~e",
        "!(~u \"/[a-z]+$\" | ~tcp)",
        "~s & !~http",
    ];
}
