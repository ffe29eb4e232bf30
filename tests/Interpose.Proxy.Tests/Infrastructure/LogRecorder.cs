using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>Keeps every log event's id and message, and lets a test await the first event with an id.</summary>
public sealed class LogRecorder : ILoggerProvider
{
    private readonly ConcurrentQueue<(int Id, string Message)> _events = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<string>> _first = new();

    public IReadOnlyList<(int Id, string Message)> Events => [.. _events];

    /// <summary>The message of the first event with <paramref name="eventId"/>, once it was logged.</summary>
    public Task<string> FirstAsync(int eventId) => Waiter(eventId).Task;

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private TaskCompletionSource<string> Waiter(int eventId) =>
        _first.GetOrAdd(eventId, static _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));

    private sealed class Logger(LogRecorder recorder) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            recorder._events.Enqueue((eventId.Id, message));
            recorder.Waiter(eventId.Id).TrySetResult(message);
        }
    }
}
