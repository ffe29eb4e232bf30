namespace Interpose.Core.Flows.Har;

/// <summary>A HAR document that cannot be imported; the message names the entry and the field.</summary>
public sealed class HarFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public HarFormatException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public HarFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The cause.</param>
    public HarFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a field of an entry.</summary>
    /// <param name="entryIndex">The zero-based index of the entry in <c>log.entries</c>, or null for the document.</param>
    /// <param name="field">The field's path inside the entry (<c>request.url</c>).</param>
    /// <param name="problem">What is wrong with it.</param>
    public HarFormatException(int? entryIndex, string field, string problem)
        : base(entryIndex is { } i ? $"HAR entry {i}: {field}: {problem}" : $"HAR: {field}: {problem}")
    {
        EntryIndex = entryIndex;
        Field = field;
    }

    /// <summary>The zero-based index of the offending entry, when the problem is in one.</summary>
    public int? EntryIndex { get; }

    /// <summary>The offending field's path, when known.</summary>
    public string? Field { get; }
}
