using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// A failure nobody planned for on an HTTP/2 stream's own task (a bug: here a logging provider that throws, as a user's
/// may) ends that stream with RST_STREAM INTERNAL_ERROR (RFC 9113 §5.4.2) and an error event with the exception, instead
/// of a faulted task nobody observes and a stream the client waits on until it gives up.
/// </summary>
public sealed class Http2InternalErrorTests(ITestOutputHelper output)
{
    /// <summary>ProxyLog.BadRequest, written on the stream's task when a request's framing is malformed.</summary>
    private const int BadRequestEvent = 121;

    /// <summary>ProxyLog.Http2StreamCrashed.</summary>
    private const int StreamCrashedEvent = 137;

    [Fact]
    public async Task A_stream_whose_task_fails_unexpectedly_is_reset_with_internal_error_and_logged()
    {
        await using var origin = await Origins.StartPlainAsync();
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = new ManualClock();
        }, logs: new ThrowingOn(BadRequestEvent, logs));
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // A Content-Length that is not a number: the stream's task answers 400 and logs it, and the log call throws.
        client.Headers(1, "POST", "/echo", endStream: true, ("content-length", "abc"));
        await client.FlushAsync();

        var reset = await client.ReadUntilAsync(f => f.Type == FrameType.RstStream && f.StreamId == 1);
        Assert.NotNull(reset);
        Assert.Equal(Http2ErrorCode.InternalError, reset.ErrorCode);

        var crashed = await logs.WaitForAsync(StreamCrashedEvent);
        Assert.Equal(LogLevel.Error, crashed.Level);
        Assert.IsType<AggregateException>(crashed.Exception);

        // The connection and its other streams go on.
        client.Headers(3, "GET", "/hello", endStream: true);
        await client.FlushAsync();
        var (headers, body) = await Http2ExchangeTests.ReadResponseAsync(client, 3);
        Assert.True(headers);
        Assert.Equal("hello from origin", body);
    }

    /// <summary>Keeps every event in <paramref name="inner"/>, then throws on <paramref name="eventId"/>.</summary>
    private sealed class ThrowingOn(int eventId, LogCollector inner) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(eventId, inner.CreateLogger(categoryName));

        public void Dispose() => inner.Dispose();

        private sealed class Logger(int eventId, ILogger inner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                inner.Log(logLevel, id, state, exception, formatter);
                if (id.Id == eventId)
                {
                    throw new InvalidOperationException("a logging provider's own bug");
                }
            }
        }
    }
}
