using System.Text;

namespace Interpose.Core.Http2.Hpack;

/// <summary>The HPACK static table (RFC 7541 §2.3.1, Appendix A): 61 predefined fields, index 1..61.</summary>
internal static class StaticTable
{
    /// <summary>The number of entries (61).</summary>
    public const int Count = 61;

    private static readonly (string Name, string Value)[] Entries =
    [
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    ];

    private static readonly HeaderField[] Fields = Array.ConvertAll(
        Entries, e => new HeaderField(Encoding.Latin1.GetBytes(e.Name), Encoding.Latin1.GetBytes(e.Value)));

    /// <summary>The entry at <paramref name="index"/> (1-based, RFC 7541 §2.3.3).</summary>
    public static HeaderField Get(int index) => Fields[index - 1];

    /// <summary>The name of entry <paramref name="index"/> (1..61) as a string: decoded fields whose name is in the table
    /// share these instances instead of a string per field.</summary>
    public static string NameString(int index) => Entries[index - 1].Name;

    /// <summary>The value of entry <paramref name="index"/> (1..61) as a string ("" for a name-only entry).</summary>
    public static string ValueString(int index) => Entries[index - 1].Value;

    /// <summary>The table's lowercase spelling of <paramref name="name"/> compared without case, or null when the name is
    /// not in the table: lowercasing a known field name for HTTP/2 (RFC 9113 §8.2.1) then costs no string.</summary>
    public static string? FindNameIgnoreCase(string name)
    {
        foreach (var (known, _) in Entries)
        {
            if (known.Length == name.Length && string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                return known;
            }
        }

        return null;
    }

    /// <summary>Finds <paramref name="name"/> (lowercase) and, if possible, <paramref name="value"/>.</summary>
    /// <returns>The index of a full match, else 0; <paramref name="nameIndex"/> gets the first entry with the name (0 when none).</returns>
    public static int Find(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, out int nameIndex)
    {
        nameIndex = 0;
        for (int i = 0; i < Fields.Length; i++)
        {
            if (Fields[i].Name.AsSpan().SequenceEqual(name))
            {
                if (nameIndex == 0)
                {
                    nameIndex = i + 1;
                }

                if (Fields[i].Value.AsSpan().SequenceEqual(value))
                {
                    return i + 1;
                }
            }
            else if (nameIndex != 0)
            {
                // Entries with one name are adjacent.
                break;
            }
        }

        return 0;
    }
}
