using System.Buffers;
using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Interpose.Core.Http;

/// <summary>
/// An ordered, case-preserving list of header fields that allows duplicates, with case-insensitive
/// (<see cref="StringComparison.OrdinalIgnoreCase"/>) lookup. Order and spelling are what the wire carried,
/// so writing a parsed head back out reproduces it byte for byte.
/// </summary>
[SuppressMessage("Naming", "CA1710:Identifiers should have correct suffix", Justification = "The name is the public contract and says what it is in HTTP terms.")]
public sealed class HttpHeaders : IReadOnlyList<HttpHeader>
{
    // RFC 9110 §5.5: CR, LF and NUL are never allowed in a field value.
    private static readonly SearchValues<char> InvalidValueChars = SearchValues.Create("\r\n\0");

    private readonly List<HttpHeader> _items;

    /// <summary>Creates an empty collection.</summary>
    public HttpHeaders()
    {
        _items = [];
    }

    /// <summary>Creates an empty collection with room for <paramref name="capacity"/> fields.</summary>
    /// <param name="capacity">The initial capacity.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    public HttpHeaders(int capacity)
    {
        _items = new List<HttpHeader>(capacity);
    }

    /// <summary>The number of field lines.</summary>
    public int Count => _items.Count;

    /// <summary>The field line at <paramref name="index"/>.</summary>
    /// <param name="index">A zero-based position.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public HttpHeader this[int index] => _items[index];

    /// <summary>Appends a field line.</summary>
    /// <param name="name">The field name: an RFC 9110 §5.1 token.</param>
    /// <param name="value">The value: no CR, LF or NUL, and only Latin-1 characters (the wire encoding).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is not a token or the value holds CR, LF, NUL or a character above U+00FF.</exception>
    public void Add(string name, string value)
    {
        Validate(name, value);
        _items.Add(new HttpHeader(name, value));
    }

    /// <summary>Whether a field named <paramref name="name"/> is present (case-insensitive).</summary>
    /// <param name="name">The field name.</param>
    /// <returns><see langword="true"/> when at least one line has that name.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public bool Contains(string name) => IndexOf(name, 0) >= 0;

    /// <summary>The first value of <paramref name="name"/>, or <see langword="null"/>.</summary>
    /// <param name="name">The field name (case-insensitive).</param>
    /// <returns>The first value, or <see langword="null"/> when absent.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public string? Get(string name)
    {
        int i = IndexOf(name, 0);
        return i >= 0 ? _items[i].Value : null;
    }

    /// <summary>Gets the first value of <paramref name="name"/>.</summary>
    /// <param name="name">The field name (case-insensitive).</param>
    /// <param name="value">The first value when found.</param>
    /// <returns><see langword="true"/> when found.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public bool TryGet(string name, [NotNullWhen(true)] out string? value)
    {
        value = Get(name);
        return value is not null;
    }

    /// <summary>Every value of <paramref name="name"/>, in order.</summary>
    /// <param name="name">The field name (case-insensitive).</param>
    /// <returns>The values; empty when absent.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public IEnumerable<string> GetValues(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        List<string>? values = null;
        foreach (HttpHeader h in _items)
        {
            if (string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                (values ??= []).Add(h.Value);
            }
        }

        return values ?? (IEnumerable<string>)[];
    }

    /// <summary>Replaces the first line named <paramref name="name"/> in place (keeping its position, taking the new
    /// spelling of the name) and removes any later ones; appends when absent.</summary>
    /// <param name="name">The field name: a token.</param>
    /// <param name="value">The value: no CR, LF or NUL.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is not a token or the value is invalid.</exception>
    public void Set(string name, string value)
    {
        Validate(name, value);
        int first = IndexOf(name, 0);
        if (first < 0)
        {
            _items.Add(new HttpHeader(name, value));
            return;
        }

        _items[first] = new HttpHeader(name, value);
        for (int i = _items.Count - 1; i > first; i--)
        {
            if (string.Equals(_items[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                _items.RemoveAt(i);
            }
        }
    }

    /// <summary>Removes every line named <paramref name="name"/>.</summary>
    /// <param name="name">The field name (case-insensitive).</param>
    /// <returns>How many lines were removed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public int Remove(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int removed = 0;
        for (int i = _items.Count - 1; i >= 0; i--)
        {
            if (string.Equals(_items[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                _items.RemoveAt(i);
                removed++;
            }
        }

        return removed;
    }

    /// <summary>Removes, in one pass that keeps the others in order, every line <paramref name="match"/> selects.</summary>
    /// <param name="match">Whether to remove a line; static, its state in <paramref name="state"/>, so nothing is allocated.</param>
    /// <param name="state">What <paramref name="match"/> needs.</param>
    /// <returns>How many lines were removed.</returns>
    internal int RemoveWhere<TState>(Func<HttpHeader, TState, bool> match, TState state)
    {
        var kept = 0;
        for (var i = 0; i < _items.Count; i++)
        {
            var line = _items[i];
            if (!match(line, state))
            {
                _items[kept++] = line;
            }
        }

        var removed = _items.Count - kept;
        _items.RemoveRange(kept, removed);
        return removed;
    }

    /// <summary>Inserts a field line at <paramref name="index"/>.</summary>
    /// <param name="index">The position, 0..<see cref="Count"/>.</param>
    /// <param name="name">The field name: a token.</param>
    /// <param name="value">The value: no CR, LF or NUL.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is not a token or the value is invalid.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside 0..<see cref="Count"/>.</exception>
    public void Insert(int index, string name, string value)
    {
        Validate(name, value);
        _items.Insert(index, new HttpHeader(name, value));
    }

    /// <summary>Removes the field line at <paramref name="index"/>.</summary>
    /// <param name="index">The position.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside the list.</exception>
    public void RemoveAt(int index) => _items.RemoveAt(index);

    /// <summary>Removes every field line.</summary>
    public void Clear() => _items.Clear();

    /// <summary>A struct enumerator: <c>foreach</c> over the collection does not allocate.</summary>
    /// <returns>The enumerator.</returns>
    public List<HttpHeader>.Enumerator GetEnumerator() => _items.GetEnumerator();

    IEnumerator<HttpHeader> IEnumerable<HttpHeader>.GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    /// <summary>Appends without validation; the parser has already checked the bytes.</summary>
    internal void AddParsed(string name, string value) => _items.Add(new HttpHeader(name, value));

    /// <summary>A copy of these fields, in order: one array copy, without validating again what <see cref="Add"/> or the
    /// parser already validated (a recorder copies every exchange's heads).</summary>
    /// <returns>The copy.</returns>
    internal HttpHeaders Clone()
    {
        var copy = new HttpHeaders(_items.Count);
        copy._items.AddRange(_items);
        return copy;
    }

    private int IndexOf(string name, int start)
    {
        ArgumentNullException.ThrowIfNull(name);
        for (int i = start; i < _items.Count; i++)
        {
            if (string.Equals(_items[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Whether <see cref="Add"/> takes <paramref name="name"/> as a field name: an RFC 9110 §5.1 token. For
    /// callers that check a whole set of fields before changing anything.</summary>
    internal static bool IsValidName(string name) => HttpChars.IsToken(name);

    /// <summary>Whether <see cref="Add"/> takes <paramref name="value"/> as a field value: no CR, LF or NUL (RFC 9110
    /// §5.5) and nothing above U+00FF, which cannot be sent as Latin-1.</summary>
    internal static bool IsValidValue(string value) => !value.AsSpan().ContainsAny(InvalidValueChars) && !value.AsSpan().ContainsAnyInRange('\u0100', '\uFFFF');

    private static void Validate(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);

        // RFC 9110 §5.1: field-name = token.
        if (!IsValidName(name))
        {
            throw new ArgumentException($"'{name}' is not a valid header field name (RFC 9110 §5.1 token).", nameof(name));
        }

        if (!IsValidValue(value))
        {
            throw new ArgumentException($"The value of header '{name}' contains CR, LF, NUL or a non-Latin-1 character.", nameof(value));
        }
    }
}
