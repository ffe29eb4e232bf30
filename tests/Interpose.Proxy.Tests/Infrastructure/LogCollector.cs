using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>One log event as the proxy wrote it.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception = null);

/// <summary>
/// A logger provider that keeps every event, so a test can assert which events fired, and await one (a
/// TaskCompletionSource, no polling) instead of sleeping until it may have been written.
/// </summary>
public sealed class LogCollector : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly List<(int EventId, int Occurrence, TaskCompletionSource<LogEntry> Seen)> _waiters = [];

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <summary>The first event with <paramref name="eventId"/>, now or when it is written; fails after <see cref="BoundedRead.Limit"/>.</summary>
    public Task<LogEntry> WaitForAsync(int eventId) => WaitForAsync(eventId, occurrence: 1);

    /// <summary>The <paramref name="occurrence"/>th event (from 1) with <paramref name="eventId"/>, now or when it is
    /// written; fails after <see cref="BoundedRead.Limit"/>.</summary>
    public async Task<LogEntry> WaitForAsync(int eventId, int occurrence)
    {
        var seen = new TaskCompletionSource<LogEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiters)
        {
            if (_entries.Where(e => e.EventId.Id == eventId).Skip(occurrence - 1).FirstOrDefault() is { } already)
            {
                return already;
            }

            _waiters.Add((eventId, occurrence, seen));
        }

        try
        {
            return await seen.Task.WaitAsync(BoundedRead.Limit);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"no log event {eventId} in {BoundedRead.Limit.TotalSeconds:0} s; events: " + string.Join(", ", _entries.Select(e => e.EventId.Id).Distinct()), ex);
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        lock (_waiters)
        {
            _entries.Enqueue(entry);
            if (!_waiters.Exists(w => w.EventId == entry.EventId.Id))
            {
                return;
            }

            // Counted only when someone waits for this event: most entries have no waiter.
            var count = _entries.Count(e => e.EventId.Id == entry.EventId.Id);
            foreach (var waiter in _waiters.Where(w => w.EventId == entry.EventId.Id && w.Occurrence == count).ToList())
            {
                waiter.Seen.TrySetResult(entry);
                _waiters.Remove(waiter);
            }
        }
    }

    private sealed class Logger(LogCollector collector, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            collector.Add(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
    }
}
