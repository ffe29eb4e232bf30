using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>
/// A request as the proxy received it, and as it will be sent. Changing <see cref="Scheme"/>, <see cref="Host"/>
/// or <see cref="Port"/> reroutes the request to another origin; the Host header is left as it is unless the hook
/// changes it too.
/// </summary>
public sealed class HttpRequest : HttpMessage
{
    /// <summary>The lowest TCP port a connection can be made to.</summary>
    private const int MinPort = 1;

    /// <summary>The highest TCP port (16 bits, RFC 9293 §3.1).</summary>
    private const int MaxPort = 65535;

    private string _method;
    private string _scheme;
    private string _host;
    private int _port;
    private string _path;

    internal HttpRequest(string method, string scheme, string host, int port, string path, Version version, HttpHeaders headers)
        : base(headers, version)
    {
        _method = method;
        _scheme = scheme;
        _host = host;
        _port = port;
        _path = path;
    }

    /// <summary>Creates a request, e.g. for tests or to build a message by hand.</summary>
    /// <param name="method">The method token.</param>
    /// <param name="url">An absolute http or https URL.</param>
    /// <exception cref="ArgumentNullException"><paramref name="method"/> or <paramref name="url"/> is null.</exception>
    /// <exception cref="ArgumentException">The URL is not an absolute http or https URL, or the method is not a token.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The URL's port is 0.</exception>
    public HttpRequest(string method, Uri url)
        : this(method, url?.Scheme ?? "", url?.IdnHost ?? "", url?.Port ?? 0, url?.PathAndQuery ?? "/", new Version(1, 1), new HttpHeaders())
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException("An absolute http or https URL is required.", nameof(url));
        }

        // Through the checked setters, as a hook's edits: the internal constructor takes a parsed head as it is.
        Method = method;
        Port = url.Port;
    }

    /// <summary>The method token, e.g. GET.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentException">Set to a value that is not a token (empty, or with a space, a control or a non-ASCII character).</exception>
    public string Method
    {
        get => _method;
        set
        {
            ArgumentNullException.ThrowIfNull(value);

            // RFC 9110 §9.1: method = token. Anything else would end an HTTP/1.1 request line early, or reach an HTTP/2
            // origin as a :method it must treat as malformed (RFC 9113 §8.3.1).
            _method = HttpChars.IsToken(value) ? value : throw new ArgumentException("The method must be a token (RFC 9110 §9.1).", nameof(value));
        }
    }

    /// <summary>"http" or "https": how the proxy talks to the origin.</summary>
    /// <exception cref="ArgumentException">Set to anything but http or https.</exception>
    public string Scheme
    {
        get => _scheme;
        set => _scheme = value is "http" or "https" ? value : throw new ArgumentException("Scheme must be http or https.", nameof(value));
    }

    /// <summary>The origin's host name or IP literal (without brackets); an internationalized name in A-labels (punycode).</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentException">Set to a value that is not a host: empty, longer than 253 characters, or with
    /// a character other than letters, digits, '-', '.' and '_' (unless it is an IPv6 address).</exception>
    public string Host
    {
        get => _host;
        set
        {
            ArgumentNullException.ThrowIfNull(value);

            // RFC 3986 §3.2.2: a reg-name, an IPv4 address or an IPv6 address. A space, CR LF, '/' or '@' would go as
            // the HTTP/2 :authority when there is no Host field, as the SNI sent to the origin, and to the resolver.
            _host = RequestTargetParser.IsValidHost(value) ? value : throw new ArgumentException("The host must be a DNS name (letters, digits, '-', '.', '_'; A-labels for an internationalized name), an IPv4 address or an IPv6 address without brackets (RFC 3986 §3.2.2).", nameof(value));
        }
    }

    /// <summary>The origin's port.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value outside 1..65535.</exception>
    public int Port
    {
        get => _port;

        // RFC 9293 §3.1: a TCP port is 16 bits, and port 0 cannot be connected to.
        set => _port = value is >= MinPort and <= MaxPort ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "The port must be 1 to 65535.");
    }

    /// <summary>The path and query (the origin-form request-target), e.g. <c>/search?q=1</c>.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentException">Set to an empty value, or one with a space, a control or a non-ASCII character
    /// (percent-encode those).</exception>
    public string Path
    {
        get => _path;
        set
        {
            ArgumentNullException.ThrowIfNull(value);

            // RFC 9112 §3.2: the request-target has no whitespace or control characters (a CR LF would start a request
            // of the hook's making); RFC 9113 §8.3.1 takes :path from the same URI grammar.
            _path = Http1Parser.IsValidTargetText(value) ? value : throw new ArgumentException("The path must be non-empty, without spaces, control or non-ASCII characters (RFC 9112 §3.2).", nameof(value));
        }
    }

    /// <remarks>
    /// The request line to an HTTP/1.1 origin is written with this version (RFC 9112 §3); 2.0, an HTTP/2 client's, is
    /// sent as 1.1 (RFC 9113 §8.3.1), and an HTTP/2 origin gets no version.
    /// </remarks>
    private protected override string? RefuseVersion(Version version) =>
        version == System.Net.HttpVersion.Version10 || version == System.Net.HttpVersion.Version11 || version == System.Net.HttpVersion.Version20 ? null : "A request's version must be 1.0, 1.1 or 2.0 (RFC 9112 §2.3).";

    /// <summary>host[:port] as it would appear in a URL (port omitted when it is the scheme's default).</summary>
    public string Authority
    {
        get
        {
            var host = _host.Contains(':', StringComparison.Ordinal) ? "[" + _host + "]" : _host;
            var defaultPort = _scheme == "https" ? 443 : 80;
            return Port == defaultPort ? host : host + ":" + Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>The absolute URL of the request.</summary>
    public Uri Url => new(_scheme + "://" + Authority + _path);
}
