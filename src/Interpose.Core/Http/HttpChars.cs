namespace Interpose.Core.Http;

/// <summary>Character classes of RFC 9110 §5.6.2 (token) and §5.5 (field-value), as byte tests.</summary>
internal static class HttpChars
{
    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    private static ReadOnlySpan<byte> TokenTable =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
    ];

    public static bool IsTokenChar(byte b) => b < 128 && TokenTable[b] != 0;

    public static bool IsTokenChar(char c) => c < 128 && TokenTable[c] != 0;

    /// <summary>RFC 9110 §5.5: field-vchar = VCHAR / obs-text, plus SP and HTAB inside a value.</summary>
    public static bool IsFieldValueChar(byte b) => b >= 0x20 ? b != 0x7F : b == (byte)'\t';

    public static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t';

    public static bool IsToken(ReadOnlySpan<byte> s)
    {
        if (s.IsEmpty)
        {
            return false;
        }

        foreach (byte b in s)
        {
            if (!IsTokenChar(b))
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsToken(string s)
    {
        if (s.Length == 0)
        {
            return false;
        }

        foreach (char c in s)
        {
            if (!IsTokenChar(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Trims RFC 9110 §5.6.3 OWS (SP / HTAB) from both ends.</summary>
    public static ReadOnlySpan<char> TrimOws(ReadOnlySpan<char> s) => s.Trim(" \t");

    /// <summary>Enumerates the elements of a comma-separated list value (RFC 9110 §5.6.1), OWS-trimmed, empty elements skipped.</summary>
    public static ListEnumerator EnumerateList(string value) => new(value);

    /// <summary>Allocation-free enumerator over a list-based field value.</summary>
    public ref struct ListEnumerator
    {
        private ReadOnlySpan<char> _rest;
        private bool _done;

        public ListEnumerator(string value)
        {
            _rest = value;
            _done = false;
            Current = default;
        }

        public ReadOnlySpan<char> Current { get; private set; }

        public readonly ListEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (!_done)
            {
                int comma = _rest.IndexOf(',');
                ReadOnlySpan<char> element;
                if (comma < 0)
                {
                    element = _rest;
                    _done = true;
                }
                else
                {
                    element = _rest[..comma];
                    _rest = _rest[(comma + 1)..];
                }

                element = TrimOws(element);
                if (!element.IsEmpty)
                {
                    Current = element;
                    return true;
                }
            }

            return false;
        }
    }
}
