using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Interpose.Web;

/// <summary>The page's files, embedded in this assembly (wwwroot/), with strong ETags: the UI works offline and
/// loads nothing from the network.</summary>
internal sealed class StaticAssets
{
    private readonly Dictionary<string, Asset> _assets;

    private StaticAssets(Dictionary<string, Asset> assets) => _assets = assets;

    public static StaticAssets Load()
    {
        var assembly = typeof(StaticAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var name = resource["wwwroot/".Length..];
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content))[..32] + "\"";
            assets[name] = new Asset(content, ContentType(name), etag);
        }

        return new StaticAssets(assets);
    }

    public bool TryGet(string name, [MaybeNullWhen(false)] out Asset asset) => _assets.TryGetValue(name, out asset);

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        _ => "application/octet-stream",
    };

    internal sealed record Asset(byte[] Content, string ContentType, string ETag);
}
