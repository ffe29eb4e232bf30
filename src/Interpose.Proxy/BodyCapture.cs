using System.Buffers;
using System.Security.Cryptography;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>
/// Records a streamed body as it passes, without changing it: keeps its first bytes up to a cap in a pooled buffer that
/// grows as needed, counts its length and keeps its trailers. A body longer than the cap is hashed with SHA-256 as it
/// goes; one kept whole is hashed from its kept bytes when the flow is stored or shown.
/// </summary>
/// <remarks>
/// Add it with <see cref="HttpMessage.Observe"/>; read the result with <see cref="ToBody"/> once the exchange is over,
/// then <see cref="Dispose"/> it to return the buffer. Safe against a late call: a request body may still be streaming
/// when an exchange that failed ends, so every member takes a lock (uncontended in the normal case), and data that
/// arrives after <see cref="Dispose"/> is ignored.
/// </remarks>
public sealed class BodyCapture : IBodyObserver, IDisposable
{
    /// <summary>The default cap: 1 MiB, the suggestion (mitmproxy keeps whole bodies; a cap keeps a 1 GiB
    /// download from being held in memory).</summary>
    public const int DefaultMaxBytes = 1024 * 1024;

    /// <summary>The first buffer rented: 4 KiB holds most API bodies and costs little for the rest.</summary>
    private const int InitialBufferBytes = 4 * 1024;

    private readonly Lock _gate = new();
    private readonly int _maxBytes;

    // Created only when the body passes the cap: a body kept whole (nearly all of them) is hashed at its end in one
    // call over the kept bytes. An OpenSSL digest context per body, with its finalizable handle, was measurable under
    // load (docs/performance.md "Recording").
    private IncrementalHash? _hash;
    private byte[]? _buffer;
    private int _kept;
    private long _length;
    private bool _completed;
    private bool _disposed;

    // The hash as bytes, inline: the text is made only if someone reads it (FlowBody.Sha256).
    private Sha256Digest _sha256;

    /// <summary>Creates a capture that keeps up to <paramref name="maxBytes"/> bytes.</summary>
    /// <param name="maxBytes">The cap; null keeps the whole body (up to <see cref="Array.MaxLength"/> bytes).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBytes"/> is negative.</exception>
    public BodyCapture(int? maxBytes = DefaultMaxBytes)
    {
        if (maxBytes is { } max)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(max, nameof(maxBytes));
        }

        _maxBytes = maxBytes ?? Array.MaxLength;
    }

    /// <summary>The bytes seen so far (the whole body's length once <see cref="IsCompleted"/>).</summary>
    public long Length
    {
        get
        {
            lock (_gate)
            {
                return _length;
            }
        }
    }

    /// <summary>True once the body ended cleanly.</summary>
    public bool IsCompleted
    {
        get
        {
            lock (_gate)
            {
                return _completed;
            }
        }
    }

    /// <summary>The trailer fields of a chunked body, once it ended; null when none came.</summary>
    public HttpHeaders? Trailers { get; private set; }

    /// <inheritdoc/>
    public ValueTask OnDataAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_disposed || _completed)
            {
                return default;
            }

            foreach (var segment in data)
            {
                if (segment.IsEmpty)
                {
                    continue;
                }

                var room = _maxBytes - _kept;
                var take = (int)Math.Min(room, segment.Length);
                if (_hash is null && take < segment.Length)
                {
                    // The body passes the cap here: from now on it is hashed as it goes, starting with what was kept.
                    _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    _hash.AppendData(_buffer.AsSpan(0, _kept));
                }

                _hash?.AppendData(segment.Span);
                if (take > 0)
                {
                    EnsureRoom(_kept + take);
                    segment.Span[..take].CopyTo(_buffer.AsSpan(_kept));
                    _kept += take;
                }
            }

            _length += data.Length;
        }

        return default;
    }

    /// <inheritdoc/>
    public ValueTask OnCompletedAsync(HttpHeaders? trailers, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_disposed && !_completed)
            {
                Trailers = trailers is { Count: > 0 } ? trailers : null;
                // Without a digest context the whole body was kept (_kept == _length): its hash is made from the kept
                // bytes when the flow is stored or shown (FlowBody.FromBytes), off the connection's thread.
                _hash?.GetHashAndReset(_sha256);
                _completed = true;
            }
        }

        return default;
    }

    /// <summary>The body recorded so far: the kept bytes (copied), the length, and the hash when the body ended cleanly.</summary>
    /// <returns>The body.</returns>
    /// <exception cref="ObjectDisposedException">The capture was disposed.</exception>
    public FlowBody ToBody()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_length == 0 && _completed)
            {
                return FlowBody.Empty;
            }

            var content = _kept == 0 ? [] : _buffer.AsSpan(0, _kept).ToArray();
            return !_completed ? new FlowBody(content, _length, sha256: null)
                : _hash is null ? FlowBody.FromBytes(content)
                : FlowBody.WithDigest(content, _length, _sha256);
        }
    }

    /// <summary>Returns the buffer to the pool; later data is ignored.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _hash?.Dispose();
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
    }

    private void EnsureRoom(int needed)
    {
        if (_buffer is not null && _buffer.Length >= needed)
        {
            return;
        }

        // Doubling keeps the copies linear in the body's size; the cap bounds the last step.
        var size = Math.Min(Math.Max(needed, Math.Max(InitialBufferBytes, (_buffer?.Length ?? 0) * 2L)), _maxBytes);
        var next = ArrayPool<byte>.Shared.Rent((int)size);
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _kept).CopyTo(next);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = next;
    }

    /// <summary>A SHA-256 held inline, not as an array of its own.</summary>
    [System.Runtime.CompilerServices.InlineArray(32)]
    private struct Sha256Digest
    {
        private byte _first;
    }
}
