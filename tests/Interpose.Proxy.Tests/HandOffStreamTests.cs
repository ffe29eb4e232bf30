using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// While a connection is set up, a read that completes later continues on the thread pool, not on the thread that
/// completed it (with the command's inline socket continuations, a socket event thread); once the set-up ends, reads
/// continue where they complete (docs/performance.md, item 30).
/// </summary>
public sealed class HandOffStreamTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task A_read_completed_by_another_thread_continues_on_the_thread_pool_only_while_the_connection_is_set_up(bool setUpEnded) =>
        // Off xunit's synchronization context: the proxy's flows run without one.
        Task.Run(async () =>
        {
            var inner = new ThreadCompletedStream();
            using var stream = new HandOffStream(inner);
            if (setUpEnded)
            {
                stream.EndSetUp();
            }

            var where = WhereContinuedAsync(stream.ReadAsync(new byte[1]));
            var completer = inner.CompleteOnOwnThread(1);

            var (threadId, onPool) = await where.WaitAsync(BoundedRead.Limit);
            Assert.Equal(!setUpEnded, onPool);
            Assert.Equal(setUpEnded, threadId == completer);
            Assert.Equal(!setUpEnded, stream.HandsOff);
        });

    [Fact]
    public async Task A_read_with_data_already_there_completes_at_once_while_set_up()
    {
        using var stream = new HandOffStream(new MemoryStream([1, 2, 3]));
        var buffer = new byte[3];

        var read = stream.ReadAsync(buffer);

        Assert.True(read.IsCompletedSuccessfully);
        Assert.Equal(3, await read);
        Assert.Equal(new byte[] { 1, 2, 3 }, buffer);
    }

    [Fact]
    public void A_transport_made_over_a_hand_off_stream_ends_its_set_up()
    {
        var stream = new HandOffStream(new MemoryStream());
        var transport = new Transport(socket: null, stream);

        transport.EndSetUp();
        transport.EndSetUp();

        Assert.False(stream.HandsOff);
    }

    private static async Task<(int ThreadId, bool OnPool)> WhereContinuedAsync(ValueTask<int> read)
    {
        await read.ConfigureAwait(false);
        return (Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread);
    }

    /// <summary>A stream whose one read completes when a dedicated thread (not a pool thread, like a socket event
    /// thread) says so, running the read's continuation on that thread.</summary>
    private sealed class ThreadCompletedStream() : NetworkReadStream(Null)
    {
        // Continuations run on the thread that completes the read, as a socket's inline continuations do.
        private readonly TaskCompletionSource<int> _read = new(TaskCreationOptions.None);

        /// <summary>Completes the read on a new thread; returns that thread's id.</summary>
        public int CompleteOnOwnThread(int count)
        {
            var thread = new Thread(() => _read.SetResult(count)) { IsBackground = true };
            thread.Start();
            return thread.ManagedThreadId;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(_read.Task);
    }
}
