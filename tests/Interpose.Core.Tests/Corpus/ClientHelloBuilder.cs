using System.Buffers.Binary;
using System.Text;

namespace Interpose.Core.Tests.Corpus;

/// <summary>Builds ClientHello handshake messages and wraps them in TLS records of a chosen size.</summary>
public static class ClientHelloBuilder
{
    public static byte[] Message(string? sni, string[]? alpn = null, ushort[]? versions = null, ushort[]? suites = null, byte[][]? extraExtensions = null)
    {
        var body = new List<byte>();
        body.AddRange([0x03, 0x03]);
        body.AddRange(new byte[32]);
        body.Add(32);
        body.AddRange(Enumerable.Repeat((byte)7, 32));
        suites ??= [0x1301, 0x1302, 0xC02F];
        AddU16(body, suites.Length * 2);
        foreach (ushort s in suites)
        {
            AddU16(body, s);
        }

        body.AddRange([1, 0]);
        var ext = new List<byte>();
        if (sni is not null)
        {
            byte[] name = Encoding.ASCII.GetBytes(sni);
            var list = new List<byte> { 0 };
            AddU16(list, name.Length);
            list.AddRange(name);
            var data = new List<byte>();
            AddU16(data, list.Count);
            data.AddRange(list);
            AddExtension(ext, 0, [.. data]);
        }

        if (alpn is not null)
        {
            var list = new List<byte>();
            foreach (string p in alpn)
            {
                list.Add((byte)p.Length);
                list.AddRange(Encoding.ASCII.GetBytes(p));
            }

            var data = new List<byte>();
            AddU16(data, list.Count);
            data.AddRange(list);
            AddExtension(ext, 16, [.. data]);
        }

        if (versions is not null)
        {
            var data = new List<byte> { (byte)(versions.Length * 2) };
            foreach (ushort v in versions)
            {
                AddU16(data, v);
            }

            AddExtension(ext, 43, [.. data]);
        }

        foreach (byte[] raw in extraExtensions ?? [])
        {
            ext.AddRange(raw);
        }

        AddU16(body, ext.Count);
        body.AddRange(ext);

        var message = new List<byte> { 1, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count };
        message.AddRange(body);
        return [.. message];
    }

    /// <summary>Wraps a handshake message in handshake records carrying at most <paramref name="fragment"/> bytes each.</summary>
    public static byte[] Records(byte[] message, int fragment = 16384)
    {
        var output = new List<byte>();
        for (int i = 0; i < message.Length; i += fragment)
        {
            int n = Math.Min(fragment, message.Length - i);
            output.AddRange([0x16, 0x03, 0x01]);
            AddU16(output, n);
            output.AddRange(message.AsSpan(i, n).ToArray());
        }

        return [.. output];
    }

    public static byte[] Extension(ushort type, byte[] data)
    {
        var e = new List<byte>();
        AddExtension(e, type, data);
        return [.. e];
    }

    private static void AddExtension(List<byte> ext, ushort type, byte[] data)
    {
        AddU16(ext, type);
        AddU16(ext, data.Length);
        ext.AddRange(data);
    }

    private static void AddU16(List<byte> list, int value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)value);
        list.Add(b[0]);
        list.Add(b[1]);
    }
}
