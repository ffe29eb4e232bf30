namespace Interpose.Core.Filters;

/// <summary>What follows an operator's code in the filter language.</summary>
public enum FilterArity
{
    /// <summary>Nothing: <c>~q</c>.</summary>
    None,

    /// <summary>A regular expression: <c>~d example\.com</c>.</summary>
    Regex,

    /// <summary>A decimal number: <c>~c 404</c>.</summary>
    Number,
}
