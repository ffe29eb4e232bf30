using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>
/// What a request and a response share: version, the ordered header fields, trailers and the body as a hook sees it.
/// </summary>
/// <remarks>
/// Bodies stream by default: <see cref="HasBody"/> is false and <see cref="Body"/> is empty while the bytes flow
/// straight from one peer to the other. A hook that needs the whole body sets <see cref="BufferBody"/> in a
/// <c>...HeadersAsync</c> hook; the next hook then sees it (up to <see cref="ProxyOptions.MaxBufferedBodyBytes"/>).
/// A hook may also replace the body (<see cref="SetBody(ReadOnlyMemory{byte})"/>), transform it chunk by chunk
/// (<see cref="Transform"/>, or the synchronous <see cref="StreamTransform"/>) or watch it pass unchanged
/// (<see cref="Observe"/>); framing headers are fixed for it after the hooks ran.
/// </remarks>
public abstract class HttpMessage
{
    private Version _version;
    private ReadOnlyMemory<byte> _body;
    private BodyTransform? _streamTransform;
    private List<IBodyObserver>? _observers;

    /// <summary>Creates a message with the given header collection.</summary>
    private protected HttpMessage(HttpHeaders headers, Version version)
    {
        Headers = headers;
        _version = version;
    }

    /// <summary>
    /// The message's HTTP version as received: 1.0 or 1.1, or 2.0 for an HTTP/2 client's request (sent as 1.1 to an
    /// HTTP/1.1 origin). The version each side spoke is on the exchange.
    /// </summary>
    /// <remarks>
    /// A hook may set what an HTTP/1.1 head can carry (RFC 9112 §2.3: HTTP-version is "HTTP/" DIGIT "." DIGIT, and the
    /// proxy speaks 1.0 and 1.1): 1.0 or 1.1, and for a request 2.0 too. HTTP/2 peers get no version at all (RFC 9113
    /// §8.3): it is ignored toward them.
    /// </remarks>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentException">Set to another version (0.9, 1.2, 3.0, or 1.1 with a build number).</exception>
    public Version Version
    {
        get => _version;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            _version = RefuseVersion(value) is { } why ? throw new ArgumentException(why, nameof(value)) : value;
        }
    }

    /// <summary>Why a hook may not set <paramref name="version"/> on this kind of message, or null when it may.</summary>
    private protected abstract string? RefuseVersion(Version version);

    /// <summary>The header fields in received order, case and duplicates preserved.</summary>
    public HttpHeaders Headers { get; }

    /// <summary>
    /// Trailer fields of a chunked body, when the peer sent some: set once the body was buffered, or once a streamed
    /// body ended (after the response hooks, so read them in <see cref="ProxyAddon.DoneAsync"/> or an observer).
    /// A response sent whole (an addon's answer, or a body buffered for a hook) that has trailers goes chunked to an
    /// HTTP/1.1 client, as trailers travel only in chunked framing (RFC 9112 §7.1.2); an HTTP/1.0 client gets none.
    /// </summary>
    public HttpHeaders? Trailers { get; set; }

    /// <summary>
    /// Set in a headers hook to receive the whole body in the next hook. Bodies larger than
    /// <see cref="ProxyOptions.MaxBufferedBodyBytes"/> fail the exchange with a clear error.
    /// </summary>
    public bool BufferBody { get; set; }

    /// <summary>
    /// A per-chunk transform for a streamed body: called with each chunk as it arrives and once with an empty chunk
    /// at the end (its return value is then the final bytes to send). The body is re-framed as chunked (or
    /// close-delimited for HTTP/1.0 clients).
    /// </summary>
    public BodyTransform? StreamTransform
    {
        get => _streamTransform;
        set
        {
            _streamTransform = value;
            Transform = value is null ? null : new DelegateBodyTransform(value);
        }
    }

    /// <summary>
    /// An asynchronous transform for a streamed body (see <see cref="IBodyTransform"/>); setting
    /// <see cref="StreamTransform"/> sets this too. The body is re-framed as chunked (or close-delimited for HTTP/1.0
    /// clients).
    /// </summary>
    public IBodyTransform? Transform { get; set; }

    /// <summary>The observers added with <see cref="Observe"/>, in order (empty when none).</summary>
    public IReadOnlyList<IBodyObserver> Observers => (IReadOnlyList<IBodyObserver>?)_observers ?? [];

    /// <summary>Watches the streamed body as it passes, unchanged (see <see cref="IBodyObserver"/>).</summary>
    /// <param name="observer">The observer; it sees the body after any <see cref="Transform"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="observer"/> is null.</exception>
    public void Observe(IBodyObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        (_observers ??= []).Add(observer);
    }

    /// <summary>True when <see cref="Body"/> holds the whole body: buffered on request or set by a hook.</summary>
    public bool HasBody { get; private set; }

    /// <summary>True when a hook replaced the body; the proxy then sends it with a fresh Content-Length.</summary>
    internal bool BodyReplaced { get; private set; }

    /// <summary>The whole body when <see cref="HasBody"/>; otherwise empty.</summary>
    public ReadOnlyMemory<byte> Body => _body;

    /// <summary>Replaces the body. Content-Length (or chunking) is fixed for it before it is sent.</summary>
    /// <param name="body">The new body bytes.</param>
    public void SetBody(ReadOnlyMemory<byte> body)
    {
        _body = body;
        HasBody = true;
        BodyReplaced = true;
    }

    /// <summary>Replaces the body with text (UTF-8 unless another encoding is given).</summary>
    /// <param name="text">The new body.</param>
    /// <param name="encoding">The encoding; UTF-8 when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public void SetText(string text, Encoding? encoding = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        SetBody((encoding ?? Encoding.UTF8).GetBytes(text));
    }

    /// <summary>The body decoded as text (UTF-8 unless another encoding is given).</summary>
    /// <param name="encoding">The encoding; UTF-8 when null.</param>
    /// <exception cref="InvalidOperationException">The body is not available (it streams; set <see cref="BufferBody"/>).</exception>
    public string GetText(Encoding? encoding = null)
    {
        EnsureBody();
        return (encoding ?? Encoding.UTF8).GetString(_body.Span);
    }

    // The reflection-based overloads need the types' metadata at run time, which trimming and native AOT remove.
    internal const string ReflectionJson = "Reflection-based JSON: pass a JsonTypeInfo<T> from a JsonSerializerContext when trimming or compiling ahead of time.";

    /// <summary>Deserializes the body as JSON.</summary>
    /// <typeparam name="T">The type to read.</typeparam>
    /// <param name="options">Serializer options; the web defaults when null.</param>
    /// <exception cref="InvalidOperationException">The body is not available (it streams; set <see cref="BufferBody"/>).</exception>
    /// <exception cref="JsonException">The body is not valid JSON for <typeparamref name="T"/>.</exception>
    [RequiresUnreferencedCode(ReflectionJson)]
    [RequiresDynamicCode(ReflectionJson)]
    public T? ReadJson<T>(JsonSerializerOptions? options = null)
    {
        EnsureBody();
        return JsonSerializer.Deserialize<T>(_body.Span, options ?? JsonSerializerOptions.Web);
    }

    /// <summary>Deserializes the body as JSON with source-generated metadata (trimming and native AOT safe).</summary>
    /// <typeparam name="T">The type to read.</typeparam>
    /// <param name="typeInfo">The metadata for <typeparamref name="T"/>, from a <c>JsonSerializerContext</c>.</param>
    /// <exception cref="InvalidOperationException">The body is not available (it streams; set <see cref="BufferBody"/>).</exception>
    /// <exception cref="JsonException">The body is not valid JSON for <typeparamref name="T"/>.</exception>
    public T? ReadJson<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        EnsureBody();
        return JsonSerializer.Deserialize(_body.Span, typeInfo);
    }

    /// <summary>Replaces the body with <paramref name="value"/> serialized as JSON (UTF-8).</summary>
    /// <typeparam name="T">The type to write.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="options">Serializer options; the web defaults when null.</param>
    [RequiresUnreferencedCode(ReflectionJson)]
    [RequiresDynamicCode(ReflectionJson)]
    public void SetJson<T>(T value, JsonSerializerOptions? options = null) =>
        SetBody(JsonSerializer.SerializeToUtf8Bytes(value, options ?? JsonSerializerOptions.Web));

    /// <summary>Replaces the body with <paramref name="value"/> serialized as JSON with source-generated metadata.</summary>
    /// <typeparam name="T">The type to write.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="typeInfo">The metadata for <typeparamref name="T"/>, from a <c>JsonSerializerContext</c>.</param>
    public void SetJson<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        SetBody(JsonSerializer.SerializeToUtf8Bytes(value, typeInfo));
    }

    /// <summary>Stores a body read by the proxy on a hook's request (not a replacement).</summary>
    internal void SetBufferedBody(ReadOnlyMemory<byte> body)
    {
        _body = body;
        HasBody = true;
    }

    private void EnsureBody()
    {
        if (!HasBody)
        {
            throw new InvalidOperationException(
                "The body is streaming and not available; set BufferBody = true in the headers hook to receive it.");
        }
    }

    /// <summary>The synchronous delegate, run as an <see cref="IBodyTransform"/>.</summary>
    private sealed class DelegateBodyTransform(BodyTransform transform) : IBodyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> TransformAsync(ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
            new(transform(chunk));

        public ValueTask<ReadOnlyMemory<byte>> CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken) =>
            new(transform(ReadOnlyMemory<byte>.Empty));
    }
}
