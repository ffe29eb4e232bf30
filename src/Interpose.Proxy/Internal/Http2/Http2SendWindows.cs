using System.Collections.Concurrent;
using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The send side of HTTP/2 flow control for one connection, client-facing or origin-facing: the connection's send
/// window and the waits of the streams that have DATA but no credit (RFC 9113 §6.9).
/// </summary>
/// <remarks>
/// One lock (<see cref="FlowLock"/>) guards every window of the connection and its streams: each update is a few
/// instructions, and the connection window and a stream window must be debited together.
/// </remarks>
internal sealed class Http2SendWindows
{
    // RFC 9113 §6.9.2: the connection window starts at 65,535 and only WINDOW_UPDATE on stream 0 moves it.
    private readonly FlowWindow _connection = new(0, Http2Settings.DefaultInitialWindowSize);

    /// <summary>Guards every flow-control window of the connection and its streams.</summary>
    public object FlowLock { get; } = new();

    /// <summary>
    /// Waits until both the connection's and the stream's send windows have credit (RFC 9113 §6.9.1: "A sender MUST NOT
    /// send a flow-controlled frame with a length that exceeds the space available in either of the flow-control
    /// windows"), then takes up to <paramref name="wanted"/> octets of it.
    /// </summary>
    /// <returns>The octets granted; 0 once the stream was stopped (<see cref="Http2StreamSendWindow.Stop"/>).</returns>
    /// <exception cref="TimeoutException">No credit came within <paramref name="stallTimeout"/> (a zero-window stall).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<int> TakeAsync(Http2StreamSendWindow stream, int wanted, TimeSpan stallTimeout, TimeProvider time, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (FlowLock)
            {
                var granted = (int)Math.Min(Math.Min(stream.Window.Size, _connection.Size), wanted);
                if (granted > 0)
                {
                    stream.Window.Take(granted);
                    _connection.Take(granted);
                    return granted;
                }

                if (stream.IsStopped)
                {
                    return 0;
                }

                wait = stream.ArmWait();
            }

            await wait.WaitAsync(stallTimeout, time, cancellationToken);
        }
    }

    /// <summary>Whether both the stream's and the connection's send windows have credit now.</summary>
    public bool HasCredit(Http2StreamSendWindow stream)
    {
        lock (FlowLock)
        {
            return stream.Window.Size > 0 && _connection.Size > 0;
        }
    }

    /// <summary>WINDOW_UPDATE on stream 0: the connection window grows and every waiting stream looks again.</summary>
    /// <exception cref="Http2ConnectionException">The increment is 0 or overflows the window (RFC 9113 §6.9, §6.9.1).</exception>
    public void OnConnectionWindowUpdate<TStream>(int increment, ConcurrentDictionary<int, TStream> streams)
        where TStream : IHttp2SendingStream
    {
        lock (FlowLock)
        {
            _connection.Increase(increment);
        }

        WakeAll(streams);
    }

    /// <summary>WINDOW_UPDATE on a stream: its window grows and its sender looks again.</summary>
    /// <returns>Null, or the stream error to reset the stream with (an increment of 0 or an overflow, RFC 9113 §6.9).</returns>
    public Http2StreamException? OnStreamWindowUpdate(Http2StreamSendWindow stream, int increment)
    {
        lock (FlowLock)
        {
            try
            {
                stream.Window.Increase(increment);
            }
            catch (Http2StreamException ex)
            {
                return ex;
            }

            stream.Wake();
        }

        return null;
    }

    /// <summary>
    /// A new SETTINGS_INITIAL_WINDOW_SIZE: RFC 9113 §6.9.2, "a receiver MUST adjust the size of all stream flow-control
    /// windows that it maintains by the difference between the new value and the old value". Call under
    /// <see cref="FlowLock"/>, with the settings applied in the same turn.
    /// </summary>
    /// <exception cref="Http2ConnectionException">A window overflows (FLOW_CONTROL_ERROR).</exception>
    public static void ApplyInitialWindowSizeDelta<TStream>(int delta, ConcurrentDictionary<int, TStream> streams)
        where TStream : IHttp2SendingStream
    {
        if (delta == 0)
        {
            return;
        }

        foreach (var (_, stream) in streams)
        {
            stream.SendWindow.Window.ApplyInitialWindowSizeDelta(delta);
        }
    }

    /// <summary>Some window grew for every stream: each waiting stream looks again.</summary>
    public void WakeAll<TStream>(ConcurrentDictionary<int, TStream> streams)
        where TStream : IHttp2SendingStream
    {
        lock (FlowLock)
        {
            foreach (var (_, stream) in streams)
            {
                stream.SendWindow.Wake();
            }
        }
    }
}

/// <summary>A stream that sends flow-controlled DATA.</summary>
internal interface IHttp2SendingStream
{
    /// <summary>Our send window on the stream, with its wait for credit.</summary>
    Http2StreamSendWindow SendWindow { get; }
}

/// <summary>One stream's send window and the wait of its sender for credit (under <see cref="Http2SendWindows.FlowLock"/>).</summary>
internal sealed class Http2StreamSendWindow(FlowWindow window)
{
    private TaskCompletionSource? _wait;

    /// <summary>The window; replaced when the stream id is assigned (an origin stream gets its id with its HEADERS).</summary>
    public FlowWindow Window { get; set; } = window;

    /// <summary>True once the stream sends no more: a wait for credit returns at once.</summary>
    public bool IsStopped { get; private set; }

    /// <summary>Ready for a new stream (a pooled stream object reused): not stopped, nobody waiting.</summary>
    public void Reset()
    {
        IsStopped = false;
        _wait = null;
    }

    /// <summary>A wait for credit, completed by <see cref="Wake"/>. Under the flow lock.</summary>
    public Task ArmWait()
    {
        _wait = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _wait.Task;
    }

    /// <summary>Some window grew: the waiting sender looks again. Under the flow lock.</summary>
    public void Wake()
    {
        _wait?.TrySetResult();
        _wait = null;
    }

    /// <summary>The stream failed or was reset: its sender stops waiting, now and later. Under the flow lock.</summary>
    public void Stop()
    {
        IsStopped = true;
        Wake();
    }
}
