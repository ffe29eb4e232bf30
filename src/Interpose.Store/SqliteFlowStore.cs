using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SQLitePCL;

namespace Interpose.Store;

/// <summary>
/// Flows in one SQLite file (WAL, <c>synchronous=NORMAL</c>): an <see cref="IFlowStore"/> to query, and an
/// <see cref="IFlowSink"/> so a recorder writes into it in batched transactions. The format is in
/// <c>docs/flows.md</c>.
/// </summary>
/// <remarks>
/// <code>
///  IFlowSink.WriteAsync ─► pending batch ─(BatchSize, MaxBatchBodyBytes, or FlushAsync)─► one transaction
///  AppendAsync ────────────────────────────────────────────────────────────────────────► one transaction
///  each commit ─► its WAL pages counted ─(16 MiB)─► checkpoint request ─► CheckpointAsync (a connection of its own)
///              ◄── after the next commit, a RESTART by the writer ◄─(the WAL holds over 64 MiB)─┘
///  QueryAsync/CountAsync/GetAsync ─► a read connection of their own (WAL: readers never wait on the writer)
///                                    WHERE from FilterSqlPushDown, the residual filter in memory
/// </code>
/// A writable store holds an exclusive advisory lock (<c>flock</c>) on the file for its lifetime, so a second
/// recorder (another process, or another store in this one) is refused with <see cref="FlowStoreProblem.Locked"/>;
/// readers take no lock and read while it records. A process killed mid-recording loses the batch not yet committed:
/// WAL keeps the file consistent (https://www.sqlite.org/wal.html), and synchronous=NORMAL may lose the last commits
/// on power loss only, never consistency.
/// NOTE: Microsoft.Data.Sqlite's async methods run synchronously; the store calls the synchronous ones and says so,
/// rather than pretend. Its callers are a recorder's background task and the command line, never the data path.
/// </remarks>
public sealed class SqliteFlowStore : IFlowStore, IFlowSink
{
    private static readonly FilterSqlColumns Columns = FilterSqlColumns.Default with
    {
        Method = "f.method",
        Host = "f.host",
        Url = "f.url",
        StatusCode = "f.status_code",
    };

    /// <summary>The most certificate keys remembered as stored, to skip their insert: 4,096, far more distinct origin
    /// certificates than a recording session meets; past it the set starts over (an insert is then merely ignored).</summary>
    private const int MaxCachedCertificateKeys = 4096;

    /// <summary>
    /// WAL bytes between checkpoints: 16 MiB (4,096 pages of 4 KiB, 1,024 of <see cref="NewFilePageSize"/>) instead of
    /// SQLite's 1,000 pages (https://www.sqlite.org/pragma.html#pragma_wal_autocheckpoint): fewer, longer checkpoints
    /// cost the recorder less per flow (measured in bench/Interpose.StoreBench, docs/performance.md "Recording"); the WAL
    /// stays bounded, and a crash still loses at most the uncommitted batch (the WAL is part of the database until
    /// checkpointed).
    /// </summary>
    internal const long DefaultWalCheckpointBytes = 16L * 1024 * 1024;

    /// <summary>
    /// The most the WAL may hold before the writer starts it over itself: 64 MiB, four checkpoint thresholds. SQLite
    /// starts the WAL over only when a write transaction begins with every frame copied; under a steady stream of
    /// commits the writer always began while the checkpointer still had frames to copy, so the WAL grew without bound
    /// even though each checkpoint copied everything: 1.3 GB after 24 s of recording at 20,000 exchanges a second, more
    /// than the database, and every write went to new pages (docs/performance.md, "Recording, ninth look"). Past this
    /// size the writer runs a RESTART checkpoint between two batches (it copies only what the checkpointer has not
    /// copied yet), so that its next batch writes the WAL from its start; <c>journal_size_limit</c> then cuts the file
    /// back to this size.
    /// </summary>
    internal const long DefaultWalLimitBytes = 4 * DefaultWalCheckpointBytes;

    /// <summary>How many times one checkpoint request copies again what the writer committed while it copied: the
    /// writer restarts the WAL from its start only once every frame is copied (https://www.sqlite.org/wal.html, "Avoiding
    /// Excessively Large WAL Files"), and each pass has less to copy than the one before. 4 passes, then the next request
    /// goes on.</summary>
    private const int CheckpointPasses = 4;

    /// <summary>
    /// The page size of a new store file: 16 KiB instead of SQLite's 4 KiB (https://www.sqlite.org/pragma.html#pragma_page_size).
    /// A recorded flow is a row of 1-3 KiB and a body; SQLite writes each WAL frame (a page) with its own system calls,
    /// and the recorder's commits spent most of their CPU in those writes: 16 KiB pages cut the store's CPU per flow by
    /// about a fifth (docs/performance.md, "Recording, third pass"). 64 KiB measured no better. A file made with another
    /// page size keeps it.
    /// </summary>
    private const int NewFilePageSize = 16 * 1024;

    private readonly HashSet<UInt128> _storedCertificates = [];

    /// <summary>Each certificate's SHA-256 by its DER array (<see cref="Hash"/>); an entry goes with its array.</summary>
    private readonly ConditionalWeakTable<byte[], byte[]> _certificateHashes = [];
    private WriteStatements? _statements;
    private readonly string _path;
    private readonly SqliteFlowStoreOptions _options;
    private readonly ILogger _logger;
    private readonly SqliteConnection _connection;
    private readonly FileStream? _lock;
    private readonly SemaphoreSlim _gate = new(1, 1);
    /// <summary>The open batch of <see cref="WriteAsync"/>: its transaction (null when none), its flows and body bytes,
    /// and the certificates it stored. Each flow is inserted when written, so the flow objects die young instead of
    /// waiting up to a flush interval in a list (every collection under load promoted them: docs/performance.md,
    /// "Recording, third pass").</summary>
    private SqliteTransaction? _batch;
    private int _batchFlows;
    private long _batchBodyBytes;
    private readonly List<UInt128> _batchCertificates = [];
    private long _written;

    /// <summary>Flows of <see cref="WriteAsync"/> in committed batches (<see cref="KeptFlows"/>).</summary>
    private long _keptWrites;

    /// <summary>Why another write's commit of the open batch failed, losing flows <see cref="WriteAsync"/> had taken;
    /// thrown, once, by the next <see cref="WriteAsync"/> or <see cref="FlushAsync"/> (<see cref="ThrowIfBatchLost"/>).
    /// Null when no batch was lost since.</summary>
    private IOException? _lostBatch;
    private bool _disposed;

    /// <summary>Told each batch's flows once committed (null when none): its list, filled only then.</summary>
    private readonly IFlowStoreObserver? _observer;
    private readonly List<SequencedFlow> _batchStored = [];

    /// <summary>The seq of the newest row inserted (in the open batch or committed) and of the newest committed, both
    /// under the gate. New rows take the next one (<see cref="FlowInsert"/>), so a number is never given twice while
    /// the store is open, even after the newest rows are deleted.</summary>
    private long _lastSeq;
    private long _committedSeq;

    /// <summary>Checkpoints of the WAL, made off the writer's path (<see cref="CheckpointAsync"/>): a request when
    /// <see cref="_walBytes"/> passes the options' <c>WalCheckpointBytes</c>; one pending request stands for any number.
    /// Null when read-only.</summary>
    private readonly Channel<bool>? _checkpointRequests;
    private readonly Task _checkpointer = Task.CompletedTask;
    private readonly long _pageSize;
    private long _walBytes;

    /// <summary>Set by the checkpointer when the WAL has grown past <c>WalLimitBytes</c>; the writer then starts
    /// the WAL over after its next commit (<see cref="RestartWalIfAsked"/>).</summary>
    private int _restartWanted;

    private SqliteFlowStore(string path, SqliteFlowStoreOptions options, ILogger logger, SqliteConnection connection, FileStream? fileLock, int version, IFlowStoreObserver? observer)
    {
        _observer = observer;
        _path = path;
        _options = options;
        _logger = logger;
        _connection = connection;
        _lock = fileLock;
        SchemaVersion = version;
        if (!options.ReadOnly)
        {
            _lastSeq = _committedSeq = MaxSeq(connection);
            _pageSize = PageSize(connection);
            _checkpointRequests = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
            {
                FullMode = BoundedChannelFullMode.DropWrite,
                SingleReader = true,
                SingleWriter = true,
            });
            _checkpointer = CheckpointAsync(_checkpointRequests.Reader);
        }
    }

    /// <summary>The file.</summary>
    public string Path => _path;

    /// <summary>Whether the store was opened read-only.</summary>
    public bool IsReadOnly => _options.ReadOnly;

    /// <summary>The schema version of the file (after migration, when writable).</summary>
    public int SchemaVersion { get; }

    /// <summary>The schema version this code writes.</summary>
    public static int CurrentSchemaVersion => FlowStoreSchema.CurrentVersion;

    /// <summary>Flows committed to the file through this instance.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>
    /// Opens the store in <paramref name="path"/>. Writable (the default): creates the file when missing, migrates an
    /// older schema, and locks it against a second writer. Read-only: the file must exist and is never changed.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Read-only or writable, batch sizes; the defaults when null.</param>
    /// <param name="logger">Where commits and migrations are logged (Debug); nowhere when null.</param>
    /// <param name="observer">Told each batch's flows once it is committed, under the store's write gate (the web UI's
    /// live list); writable stores only.</param>
    /// <returns>The open store; dispose it to commit what is pending and release the file.</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, or an observer is given for a read-only
    /// store.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A batch size in <paramref name="options"/> is less than 1.</exception>
    /// <exception cref="FlowStoreException">The file is not a flow store, is from a newer schema, is corrupt, is locked
    /// by another recorder, or (read-only) does not exist. The file was not changed.</exception>
    /// <exception cref="IOException">The file cannot be opened or created.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened for lack of permission.</exception>
    public static SqliteFlowStore Open(string path, SqliteFlowStoreOptions? options = null, ILogger? logger = null, IFlowStoreObserver? observer = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new SqliteFlowStoreOptions();
        if (options.ReadOnly && observer is not null)
        {
            throw new ArgumentException("a read-only store stores nothing to observe", nameof(observer));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatchBodyBytes, 1, nameof(options));
        logger ??= NullLogger.Instance;
        path = System.IO.Path.GetFullPath(path);
        if (options.ReadOnly && !File.Exists(path))
        {
            throw new FlowStoreException(path, FlowStoreProblem.NotFound, "no such file");
        }

        FileStream? fileLock = null;
        SqliteConnection? connection = null;
        try
        {
            if (!options.ReadOnly)
            {
                fileLock = Lock(path);
            }

            connection = Connect(path, options.ReadOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate);
            var version = Inspect(connection, path, options.ReadOnly);
            if (!options.ReadOnly)
            {
                // Only now that the file is known to be ours (or empty) may anything be written to it.
                if (version == 0)
                {
                    // Before the first table and before WAL: a WAL database cannot change its page size.
                    Execute(connection, $"PRAGMA page_size = {NewFilePageSize};");
                }

                Execute(connection, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
                var pageSize = PageSize(connection);
                // The writer never checkpoints: a checkpoint copies up to DefaultWalCheckpointBytes into the database
                // and syncs both files, tens of milliseconds during which the recorder's queue filled and dropped bodies
                // under load. The store checkpoints on a connection of its own instead (CheckpointAsync).
                Execute(connection, "PRAGMA wal_autocheckpoint = 0;");
                Execute(connection, $"PRAGMA journal_size_limit = {options.WalLimitBytes};");
                if (version < FlowStoreSchema.CurrentVersion)
                {
                    FlowStoreSchema.Migrate(connection, version, FlowStoreSchema.CurrentVersion);
                    if (version > 0)
                    {
                        StoreLog.Migrated(logger, path, version, FlowStoreSchema.CurrentVersion);
                    }

                    version = FlowStoreSchema.CurrentVersion;
                }

                if (options.MaxFileBytes is { } max)
                {
                    Execute(connection, $"PRAGMA max_page_count = {Math.Max(1, max / pageSize)}");
                }
            }

            StoreLog.Opened(logger, path, options.ReadOnly ? "read-only" : "for writing", version);
            var store = new SqliteFlowStore(path, options, logger, connection, fileLock, version, observer);
            connection = null;
            fileLock = null;
            return store;
        }
        catch (SqliteException ex)
        {
            throw Translate(path, ex);
        }
        finally
        {
            connection?.Dispose();
            fileLock?.Dispose();
        }
    }

    /// <inheritdoc/>
    public async ValueTask AppendAsync(IReadOnlyList<Flow> flows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        ThrowIfWriteUnavailable();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            Commit(flows);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Takes one flow into the pending batch; commits the batch when it is full.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="cancellationToken">Abandons the wait for the store.</param>
    /// <returns>A task that completes when the flow is taken (and its batch committed, when full).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The store was opened read-only.</exception>
    /// <exception cref="IOException">A full batch could not be committed (a full disk, a read-only file), or another
    /// write's commit of the open batch failed since the last call, losing flows this method had taken.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public async ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(flow);
        ThrowIfWriteUnavailable();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ThrowIfBatchLost();
            ThrowIfNotMigrated();
            try
            {
                _batch ??= _connection.BeginTransaction();
                var stored = Insert(flow, _batchCertificates);
                if (_observer is not null)
                {
                    _batchStored.Add(stored);
                }
            }
            catch (SqliteException ex)
            {
                // A batch that failed is dropped, not retried: the recorder stops on the first failure anyway.
                DropBatch();
                throw Translate(_path, ex);
            }

            _batchFlows++;
            _batchBodyBytes += BodyBytes(flow);
            if (_batchFlows >= _options.BatchSize || _batchBodyBytes >= _options.MaxBatchBodyBytes)
            {
                CommitPending();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The flows <see cref="WriteAsync"/> took whose batch was committed; a batch that failed (dropped whole,
    /// its flows never readable) is not counted.</summary>
    public long? KeptFlows => Interlocked.Read(ref _keptWrites);

    /// <summary>Commits the pending batch in one transaction.</summary>
    /// <param name="cancellationToken">Abandons the wait for the store.</param>
    /// <returns>A task that completes when the batch is committed.</returns>
    /// <exception cref="IOException">The batch could not be committed (a full disk, a read-only file); it is dropped. Or
    /// another write's commit of the open batch failed since the last call, losing flows <see cref="WriteAsync"/> had
    /// taken.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ThrowIfBatchLost();
            CommitPending();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Flow?> GetAsync(Guid id, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await Task.CompletedTask;
        try
        {
            using var connection = Connect(_path, SqliteOpenMode.ReadOnly);
            using var command = connection.CreateCommand();
            command.CommandText = FlowSelect + " WHERE f.id = $id";
            command.Parameters.AddWithValue("$id", id.ToByteArray(bigEndian: true));
            using var reader = command.ExecuteReader();
            if (!reader.Read())
            {
                return null;
            }

            using var chains = new CertificateChains(connection);
            var flow = ReadFlow(reader, chains);
            using var bodies = BodiesCommand(connection);
            return WithBodies(bodies, reader.GetInt64(0), flow);
        }
        catch (SqliteException ex)
        {
            throw Translate(_path, ex);
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Flow> QueryAsync(FlowQuery? query = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        query ??= new FlowQuery();
        await Task.CompletedTask;
        ArgumentOutOfRangeException.ThrowIfNegative(query.Offset, nameof(query));
        using var rows = new Rows(this, query.Filter, selectJson: true, offset: query.Offset);
        foreach (var flow in rows.Read(query.Offset, query.Limit ?? int.MaxValue, query.IncludeBodies, cancellationToken))
        {
            yield return flow;
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<FlowListing> ListAsync(FlowFilter? filter = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await Task.CompletedTask;
        if (SchemaVersion < FlowStoreSchema.OneRowVersion)
        {
            // A file read as it is, from before the list's columns: the listing of each stored flow.
            await foreach (var flow in QueryAsync(new FlowQuery { Filter = filter }, cancellationToken))
            {
                yield return FlowListing.From(flow);
            }

            yield break;
        }

        using var rows = new Rows(this, filter, selectJson: false, listing: true);
        while (rows.NextListing(cancellationToken) is { } listing)
        {
            yield return listing;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<long> CountAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await Task.CompletedTask;
        using var rows = new Rows(this, filter, selectJson: false);
        return rows.Count(cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>The count and the flows come from one read transaction (one WAL snapshot); for a writable store the
    /// snapshot begins under the write gate, between two commits, so its sequence is exactly the newest committed.</remarks>
    public async ValueTask<FlowTail> TailAsync(FlowFilter? filter, int count, bool includeBodies = false, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            using var connection = Connect(_path, SqliteOpenMode.ReadOnly);

            // A deferred transaction takes its snapshot at its first read (https://www.sqlite.org/lang_transaction.html).
            Execute(connection, "BEGIN");
            long sequence;
            if (_options.ReadOnly)
            {
                sequence = MaxSeq(connection);
            }
            else
            {
                await _gate.WaitAsync(cancellationToken);
                try
                {
                    MaxSeq(connection);
                    sequence = _committedSeq;
                }
                finally
                {
                    _gate.Release();
                }
            }

            long total;
            using (var counted = new Rows(this, filter, selectJson: false, connection: connection))
            {
                total = counted.Count(cancellationToken);
            }

            var offset = (int)Math.Min(int.MaxValue, Math.Max(0, total - count));
            List<Flow> flows;
            using (var rows = new Rows(this, filter, selectJson: true, offset: offset, connection: connection))
            {
                flows = [.. rows.Read(offset, count, includeBodies, cancellationToken)];
            }

            Execute(connection, "COMMIT");
            return new FlowTail(offset, flows, total, sequence);
        }
        catch (SqliteException ex)
        {
            throw Translate(_path, ex);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<long> DeleteAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default)
    {
        ThrowIfWriteUnavailable();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // The open batch first: its flows are stored, so the filter may select them.
            CommitPendingForOtherWrite();
            List<long> doomed = [];
            using (var rows = new Rows(this, filter, selectJson: false))
            {
                while (rows.NextSeq(cancellationToken) is { } seq)
                {
                    doomed.Add(seq);
                }
            }

            return DeleteRows(doomed);
        }
        catch (SqliteException ex)
        {
            throw Translate(_path, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<long> DeleteByIdAsync(IReadOnlyCollection<Guid> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ThrowIfWriteUnavailable();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            CommitPendingForOtherWrite();
            List<long> doomed = [];
            using (var command = _connection.CreateCommand())
            {
                command.CommandText = "SELECT seq FROM flows WHERE id = $id";
                var id = command.Parameters.Add("$id", SqliteType.Blob);
                foreach (var each in ids)
                {
                    id.Value = each.ToByteArray(bigEndian: true);
                    if (command.ExecuteScalar() is long seq)
                    {
                        doomed.Add(seq);
                    }
                }
            }

            return DeleteRows(doomed);
        }
        catch (SqliteException ex)
        {
            throw Translate(_path, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Deletes the rows <paramref name="doomed"/> in one transaction; the caller holds the gate.</summary>
    private long DeleteRows(List<long> doomed)
    {
        using var transaction = _connection.BeginTransaction();
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;

        // Certificates stay: other flows may name them, and each is stored once.
        command.CommandText = "DELETE FROM bodies WHERE key IN ($s * 2, $s * 2 + 1); DELETE FROM flows WHERE seq = $s;";
        var s = command.Parameters.Add("$s", SqliteType.Integer);
        foreach (var seq in doomed)
        {
            s.Value = seq;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        CountWalPages();
        return doomed.Count;
    }

    /// <summary>Commits what is pending, closes the file and releases its lock.</summary>
    /// <returns>A task that completes when the file is closed.</returns>
    /// <exception cref="IOException">The pending batch could not be committed; the file is closed all the same.</exception>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        await _gate.WaitAsync();
        try
        {
            if (!IsReadOnly)
            {
                CommitPending();
            }
        }
        finally
        {
            _disposed = true;

            // The checkpointer's connection closes before the writer's: closing the last connection checkpoints the
            // whole WAL and deletes it (https://www.sqlite.org/wal.html).
            _checkpointRequests?.Writer.TryComplete();
            try
            {
                await _checkpointer;
            }
            finally
            {
                _statements?.Dispose();
                _connection.Dispose();
                _lock?.Dispose();
                _gate.Release();
                _gate.Dispose();
            }
        }
    }

    /// <summary>Raised on the checkpointer after each checkpoint request, with the WAL frames not yet copied (0: the
    /// writer starts the WAL over). Tests wait on it.</summary>
    internal event Action<long>? Checkpointed;

    /// <summary>Raised on the writer when it started the WAL over (<see cref="RestartWalIfAsked"/>). Tests wait on it.</summary>
    internal event Action? WalRestarted;

    /// <summary>Run on the checkpointer before each PASSIVE pass; tests commit there, as a writer does under load.</summary>
    internal Action? BeforeCheckpointPass { get; set; }

    private void ThrowIfWriteUnavailable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsReadOnly)
        {
            throw new InvalidOperationException($"The flow store {_path} is open read-only.");
        }
    }

    /// <summary>Commits the open batch, if any; the caller holds the gate. Every other write commits it first, so that
    /// its own transaction is the only one.</summary>
    private void CommitPending()
    {
        if (_batch is null)
        {
            return;
        }

        try
        {
            BeforeBatchCommit?.Invoke();
            _batch.Commit();
        }
        catch (SqliteException ex)
        {
            DropBatch();
            throw Translate(_path, ex);
        }

        _committedSeq = _lastSeq;
        Interlocked.Add(ref _keptWrites, _batchFlows);
        Committed(_batchFlows, _batchCertificates);
        _batch.Dispose();
        _batch = null;
        _batchFlows = 0;
        _batchBodyBytes = 0;
        _batchCertificates.Clear();
        Announce(_batchStored);
    }

    /// <summary>
    /// Commits the open batch before another write (<see cref="AppendAsync"/>, a delete); the caller holds the gate. The
    /// batch holds flows whose <see cref="WriteAsync"/> returned: when its commit fails here they are lost while the
    /// recorder that wrote them counts them as taken, and it would count them as neither recorded nor dropped. The loss
    /// is logged and kept for the recorder's next <see cref="WriteAsync"/> or <see cref="FlushAsync"/>, which throw it
    /// as they would have had they committed the batch themselves: the recorder then counts the flows it had handed and
    /// the store never kept (<see cref="KeptFlows"/>) as dropped, and stops, as on any failure of its sink.
    /// </summary>
    private void CommitPendingForOtherWrite()
    {
        var flows = _batchFlows;
        try
        {
            CommitPending();
        }
        catch (IOException ex) when (flows > 0)
        {
            StoreLog.BatchLost(_logger, _path, flows, ex);
            _lostBatch = new IOException($"{_path}: the open batch of {flows} recorded flows was lost when another write committed it: {ex.Message}", ex);
            throw;
        }
    }

    /// <summary>Throws, once, the loss <see cref="CommitPendingForOtherWrite"/> kept; the caller holds the gate.</summary>
    private void ThrowIfBatchLost()
    {
        if (_lostBatch is { } lost)
        {
            _lostBatch = null;
            throw lost;
        }
    }

    /// <summary>Run on the writer just before the open batch commits; tests fail the commit there, as a full disk does.</summary>
    internal Action? BeforeBatchCommit { get; set; }

    /// <summary>Tells the observer a committed batch's flows; the caller holds the gate.</summary>
    private void Announce(List<SequencedFlow> stored)
    {
        if (_observer is not null && stored.Count > 0)
        {
            try
            {
                _observer.Stored(stored);
            }
            finally
            {
                stored.Clear();
            }
        }
    }

    private void DropBatch()
    {
        if (_batch is not null)
        {
            try
            {
                _batch.Rollback();
            }
            catch (SqliteException)
            {
                // SQLite may have rolled it back itself (a full disk does): nothing is left to undo.
            }

            _batch.Dispose();
            _batch = null;
        }

        // The batch's rows are gone: their numbers were told to no one, and may be given again.
        _lastSeq = _committedSeq;
        _batchStored.Clear();
        _batchFlows = 0;
        _batchBodyBytes = 0;
        _batchCertificates.Clear();
    }

    /// <summary>Writes go to the current schema only: a file opened at an older version (read-only, never migrated) is
    /// not written.</summary>
    private void ThrowIfNotMigrated()
    {
        if (SchemaVersion < FlowStoreSchema.CurrentVersion)
        {
            throw new InvalidOperationException($"The flow store {_path} has schema {SchemaVersion}; only a migrated store is written.");
        }
    }

    /// <summary>Commits <paramref name="flows"/> in a transaction of their own (after the open batch); the caller
    /// holds the gate.</summary>
    private void Commit(IReadOnlyList<Flow> flows)
    {
        CommitPendingForOtherWrite();
        if (flows.Count == 0)
        {
            return;
        }

        ThrowIfNotMigrated();
        List<UInt128> newCertificates = [];
        List<SequencedFlow> stored = [];
        try
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var flow in flows)
            {
                stored.Add(Insert(flow, newCertificates));
            }

            transaction.Commit();
            _committedSeq = _lastSeq;
        }
        catch (SqliteException ex)
        {
            _lastSeq = _committedSeq;
            throw Translate(_path, ex);
        }

        Committed(flows.Count, newCertificates);
        Announce(stored);
    }

    /// <summary>Inserts one flow's row, bodies and new certificates in the transaction that is open. The statements
    /// are prepared once and kept (SQLite compiles each statement's SQL when it is prepared).</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="newCertificates">The certificates the transaction stored so far; those this flow stores are added.</param>
    /// <returns>The flow with its seq, and whether it replaced a stored row of its id.</returns>
    /// <exception cref="SqliteException">SQLite failed (a full disk, a read-only file).</exception>
    private SequencedFlow Insert(Flow flow, List<UInt128> newCertificates)
    {
        var statements = _statements ??= new WriteStatements(_connection);
        var http = flow as HttpFlow;
        var serverChain = http?.ServerTls?.CertificateChain ?? [];
        var clientChain = http?.ClientTls?.CertificateChain ?? [];
        var serverKeys = ChainKeys(serverChain);
        var clientKeys = ChainKeys(clientChain);

        // The flow column holds no body bytes (in bodies) and no certificates (in certificates).
        var record = statements.Record;
        record.ResetWrittenCount();
        FlowRecord.Write(record, flow);
        var seq = statements.Flow.Insert(flow, serverKeys, clientKeys, record.WrittenSpan, _lastSeq + 1, out var replaced);
        if (!replaced)
        {
            _lastSeq = seq;
        }
        else
        {
            // The flow was stored before (appended again with a mark or a comment): its old bodies go.
            statements.BodyDelete.Bind(1, seq);
            statements.BodyDelete.Execute();
        }

        if (http is null)
        {
            return new SequencedFlow(flow, seq, replaced);
        }

        AddBody(FlowStoreSchema.RequestPart, http.Request.Body);
        if (http.Response is { } response)
        {
            AddBody(FlowStoreSchema.ResponsePart, response.Body);
        }

        AddCertificates(serverChain, serverKeys);
        AddCertificates(clientChain, clientKeys);
        return new SequencedFlow(flow, seq, replaced);

        void AddBody(int part, FlowBody flowBody)
        {
            if (flowBody.Content.IsEmpty)
            {
                return;
            }

            statements.Body.Bind(1, seq * 2 + part);
            statements.Body.BindBlob(2, flowBody.Content.Span);
            statements.Body.Execute();
        }

        void AddCertificates(IReadOnlyList<byte[]> chain, byte[]? keys)
        {
            for (var i = 0; i < chain.Count; i++)
            {
                var hash = keys.AsSpan(i * SHA256.HashSizeInBytes, SHA256.HashSizeInBytes);
                var key = CertificateCacheKey(hash);
                if (_storedCertificates.Contains(key) || newCertificates.Contains(key))
                {
                    continue;
                }

                statements.Certificate.BindBlob(1, hash);
                statements.Certificate.BindBlob(2, chain[i]);
                statements.Certificate.Execute();
                newCertificates.Add(key);
            }
        }
    }

    /// <summary>After a commit: the certificates it stored are remembered as stored, and it is counted and logged.</summary>
    private void Committed(int flows, List<UInt128> newCertificates)
    {
        if (_storedCertificates.Count + newCertificates.Count > MaxCachedCertificateKeys)
        {
            _storedCertificates.Clear();
        }

        _storedCertificates.UnionWith(newCertificates);
        var total = Interlocked.Add(ref _written, flows);
        StoreLog.Committed(_logger, _path, flows, total);

        // The restart first: a checkpoint requested before it could hold the checkpointer busy while it runs.
        RestartWalIfAsked();
        CountWalPages();
    }

    /// <summary>
    /// Between two batches, when the checkpointer asked (<see cref="DefaultWalLimitBytes"/>): a RESTART checkpoint on
    /// the writer's own connection copies the frames the checkpointer has not copied yet and syncs, so that the next
    /// transaction writes the WAL from its start. It waits for nobody: with a reader still on an older snapshot it
    /// reports busy at once, and the next commit tries again. The caller holds the gate.
    /// </summary>
    private void RestartWalIfAsked()
    {
        if (Volatile.Read(ref _restartWanted) == 0)
        {
            return;
        }

        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(RESTART);";
            if (!WalCheckpoint(command).Busy)
            {
                Volatile.Write(ref _restartWanted, 0);
                WalRestarted?.Invoke();
            }
        }
        catch (SqliteException ex)
        {
            // A full disk or a read-only file: the next commit meets it too and reports it; the WAL stays as it is.
            StoreLog.CheckpointFailed(_logger, _path, ex.Message, ex);
        }
    }

    /// <summary>Adds the pages the last commit wrote to the WAL (SQLite counts them per connection:
    /// https://www.sqlite.org/c3ref/c_dbstatus_options.html, SQLITE_DBSTATUS_CACHE_WRITE) and asks for a checkpoint once
    /// they pass the options' <c>WalCheckpointBytes</c>; the caller holds the gate.</summary>
    private void CountWalPages()
    {
        if (_connection.Handle is not { } db
            || raw.sqlite3_db_status(db, raw.SQLITE_DBSTATUS_CACHE_WRITE, out var pages, out _, resetFlg: 1) != raw.SQLITE_OK)
        {
            return;
        }

        _walBytes += pages * _pageSize;
        if (_walBytes >= _options.WalCheckpointBytes && _checkpointRequests is not null)
        {
            _walBytes = 0;
            _checkpointRequests.Writer.TryWrite(true);
        }
    }

    /// <summary>
    /// The store's checkpointer: on each request, copies the WAL into the database on a connection of its own (PASSIVE:
    /// it never waits for the writer, nor the writer for it), again while the writer added frames meanwhile, so that the
    /// writer can start the WAL over. A failure (a full disk) is logged and the next request tries again; the writer
    /// meets the same disk and reports it.
    /// NOTE: Microsoft.Data.Sqlite runs synchronously: each checkpoint holds a thread-pool thread while it copies and
    /// syncs, never the recorder's.
    /// </summary>
    private async Task CheckpointAsync(ChannelReader<bool> requests)
    {
        SqliteConnection? connection = null;
        try
        {
            while (await requests.WaitToReadAsync())
            {
                requests.TryRead(out _);
                long left;
                try
                {
                    connection ??= Connect(_path, SqliteOpenMode.ReadWrite);
                    (var frames, left) = Checkpoint(connection, BeforeCheckpointPass);
                    if (frames * _pageSize >= _options.WalLimitBytes)
                    {
                        // Copied or not, the WAL did not start over: the writer began each transaction while frames were
                        // left to copy, so SQLite never found the WAL free of them at a transaction's start (the moment it
                        // restarts it: https://www.sqlite.org/wal.html). The writer starts it over itself.
                        Volatile.Write(ref _restartWanted, 1);
                    }
                }
                catch (SqliteException ex)
                {
                    StoreLog.CheckpointFailed(_logger, _path, ex.Message, ex);
                    continue;
                }

                Checkpointed?.Invoke(left);
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    /// <summary>Runs PASSIVE checkpoints (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint) until every frame is
    /// copied or <see cref="CheckpointPasses"/> ran; returns the frames in the WAL and those left.</summary>
    private static (long Frames, long Left) Checkpoint(SqliteConnection connection, Action? beforePass)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        long frames = 0, left = 0;
        for (var pass = 0; pass < CheckpointPasses; pass++)
        {
            beforePass?.Invoke();

            // Busy (another connection checkpointing: the store's own close) reads -1 for both counts: nothing more to do.
            (_, frames, var copied) = WalCheckpoint(command);
            left = frames - copied;
            if (left <= 0)
            {
                break;
            }
        }

        return (frames, left);
    }

    /// <summary>Runs <paramref name="command"/>, a <c>PRAGMA wal_checkpoint</c>, and reads its one row
    /// (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint): whether it was blocked, the frames in the WAL, and
    /// those copied into the database.</summary>
    private static (bool Busy, long Frames, long Copied) WalCheckpoint(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0) != 0, reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>The chain as the <c>server_chain</c>/<c>client_chain</c> column: each certificate's SHA-256, leaf first;
    /// null when there is none. A one-certificate chain (what a recorder keeps: the origin's leaf) is its hash, shared.</summary>
    private byte[]? ChainKeys(IReadOnlyList<byte[]> chain)
    {
        if (chain.Count == 0)
        {
            return null;
        }

        if (chain.Count == 1)
        {
            return Hash(chain[0]);
        }

        var keys = new byte[chain.Count * SHA256.HashSizeInBytes];
        for (var i = 0; i < chain.Count; i++)
        {
            Hash(chain[i]).CopyTo(keys, i * SHA256.HashSizeInBytes);
        }

        return keys;
    }

    /// <summary>A certificate's SHA-256, computed once per DER array: the recorder hands the same array with every flow
    /// of an origin connection (FlowRecorder keeps one per certificate), so most flows cost a lookup, not a hash
    /// (1% of the proxy's busy time under load with <c>-w</c> before, docs/performance.md "Recording").</summary>
    private byte[] Hash(byte[] der)
    {
        if (!_certificateHashes.TryGetValue(der, out var hash))
        {
            hash = SHA256.HashData(der);
            _certificateHashes.AddOrUpdate(der, hash);
        }

        return hash;
    }

    private static UInt128 CertificateCacheKey(ReadOnlySpan<byte> sha256) => BinaryPrimitives.ReadUInt128LittleEndian(sha256);

    private static long BodyBytes(Flow flow) => flow is HttpFlow http
        ? http.Request.Body.Content.Length + (http.Response?.Body.Content.Length ?? 0)
        : 0;

    private static Flow WithoutBodies(Flow flow) => flow is HttpFlow http
        ? http with
        {
            Request = http.Request with { Body = http.Request.Body.WithoutContent() },
            Response = http.Response is null ? null : http.Response with { Body = http.Response.Body.WithoutContent() },
        }
        : flow;

    /// <summary>The columns a flow is read from, after <c>FROM flows f</c>'s joins: <c>seq</c>, the flow (record or
    /// JSON), and (version 3 on) the chains' keys, as <see cref="ReadFlow"/> reads them.</summary>
    private string FlowSelect => SchemaVersion >= FlowStoreSchema.OneRowVersion
        ? $"SELECT f.seq, {FlowColumn}, f.server_chain, f.client_chain FROM flows f"
        : $"SELECT f.seq, {FlowColumn} FROM flows f" + FlowStoreSchema.FlowJoin(SchemaVersion).Join;

    /// <summary>The column that holds the flow in this file's version.</summary>
    private string FlowColumn => FlowStoreSchema.FlowJoin(SchemaVersion).Column;

    /// <summary>The flow of a row of <see cref="FlowSelect"/> (or any row with the flow at <paramref name="ordinal"/>
    /// and, version 3 on, the chains' keys after it), its certificates put back.</summary>
    /// <exception cref="FlowStoreException">The stored flow does not read back (<see cref="FlowStoreProblem.Corrupt"/>).</exception>
    private Flow ReadFlow(SqliteDataReader reader, CertificateChains chains, int ordinal = 1)
    {
        Flow flow;
        using (var stream = reader.GetStream(ordinal))
        {
            var bytes = ArrayPool<byte>.Shared.Rent((int)stream.Length);
            try
            {
                stream.ReadExactly(bytes, 0, (int)stream.Length);
                var stored = bytes.AsSpan(0, (int)stream.Length);

                // Version 4 writes records; rows written before keep their JSON.
                flow = FlowRecord.IsRecord(stored) ? FlowRecord.Read(stored) : FlowJson.Read(stored);
            }
            // A damaged row can fail anywhere in the decoders: the record reader says InvalidDataException, but a JSON row
            // without its type discriminator is NotSupportedException, and a value the flow model refuses (a header
            // field, a date) ArgumentException or OverflowException. Each is the same damage to the caller.
            catch (Exception ex) when (ex is JsonException or InvalidDataException or NotSupportedException or ArgumentException or OverflowException or FormatException)
            {
                throw new FlowStoreException(_path, FlowStoreProblem.Corrupt, "a stored flow does not read back: " + ex.Message, ex);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes);
            }
        }

        return SchemaVersion >= FlowStoreSchema.OneRowVersion ? chains.Attach(flow, reader, ordinal + 1, _path) : flow;
    }

    private static SqliteCommand BodiesCommand(SqliteConnection connection)
    {
        var command = connection.CreateCommand();
        command.CommandText = "SELECT key % 2, content FROM bodies WHERE key IN ($seq * 2, $seq * 2 + 1)";
        command.Parameters.Add("$seq", SqliteType.Integer);
        return command;
    }

    private static Flow WithBodies(SqliteCommand bodies, long seq, Flow flow)
    {
        if (flow is not HttpFlow http)
        {
            return flow;
        }

        bodies.Parameters[0].Value = seq;
        using var reader = bodies.ExecuteReader();
        while (reader.Read())
        {
            var content = (byte[])reader.GetValue(1);
            http = reader.GetInt32(0) == FlowStoreSchema.RequestPart
                ? http with { Request = http.Request with { Body = http.Request.Body with { Content = content } } }
                : http.Response is { } response ? http with { Response = response with { Body = response.Body with { Content = content } } } : http;
        }

        return http;
    }

    private static SqliteConnection Connect(string path, SqliteOpenMode mode)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mode,

            // A pooled connection would outlive Dispose, keeping the file open after the store is closed.
            Pooling = false,
        }.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>
    /// flock(LOCK_EX | LOCK_NB) on the database file through .NET's FileShare.None (advisory: SQLite's own fcntl locks
    /// are separate, and readers, which do not flock, are not kept out). Released when the process dies, so a killed
    /// recorder leaves no stale lock.
    /// </summary>
    private static FileStream Lock(string path)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                // Recorded flows carry cookies, tokens and bodies: a new file is the user's alone (SQLite gives its
                // -wal and -shm files the database file's mode).
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            return new FileStream(path, options);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException && File.Exists(path))
        {
            throw new FlowStoreException(path, FlowStoreProblem.Locked, "another process is recording into this file (two recorders into one file are refused)", ex);
        }
    }

    /// <summary>The file's schema version (0 for an empty file), or why it is not usable. Reads only.</summary>
    private static int Inspect(SqliteConnection connection, string path, bool readOnly)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA application_id; PRAGMA user_version; SELECT count(*) FROM sqlite_master;";
        using var reader = command.ExecuteReader();
        reader.Read();
        var applicationId = reader.GetInt32(0);
        reader.NextResult();
        reader.Read();
        var version = reader.GetInt32(0);
        reader.NextResult();
        reader.Read();
        var objects = reader.GetInt64(0);
        if (applicationId == FlowStoreSchema.ApplicationId)
        {
            if (version > FlowStoreSchema.CurrentVersion)
            {
                throw new FlowStoreException(path, FlowStoreProblem.NewerSchema, $"written by a newer Interpose (flow store schema {version}; this version reads up to {FlowStoreSchema.CurrentVersion})");
            }

            if (version < 1)
            {
                throw new FlowStoreException(path, FlowStoreProblem.Corrupt, "an Interpose flow store without a schema version (damaged)");
            }

            return version;
        }

        if (applicationId == 0 && objects == 0 && !readOnly)
        {
            // An empty file (or a new one): ours to initialise.
            return 0;
        }

        throw new FlowStoreException(path, FlowStoreProblem.NotAFlowStore, applicationId == 0 && objects == 0
            ? "not an Interpose flow store (an empty file)"
            : "not an Interpose flow store (a SQLite database of something else)");
    }

    private static IOException Translate(string path, SqliteException ex) => ex.SqliteErrorCode switch
    {
        // https://www.sqlite.org/rescode.html
        26 => new FlowStoreException(path, FlowStoreProblem.NotAFlowStore, "not an Interpose flow store (not a SQLite database)", ex),
        11 => new FlowStoreException(path, FlowStoreProblem.Corrupt, "the flow store is corrupt: " + ex.Message, ex),
        13 => new IOException($"{path}: the disk or the file's size limit is full: {ex.Message}", ex),
        _ => new IOException($"{path}: {ex.Message}", ex),
    };

    private static long PageSize(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA page_size";
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>The largest seq stored (0 when none).</summary>
    private static long MaxSeq(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT coalesce(max(seq), 0) FROM flows";
        return (long)command.ExecuteScalar()!;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static bool ReadsBodies(FilterNode node) => node switch
    {
        FilterPattern p => p.Operator is FilterOperator.Body or FilterOperator.RequestBody or FilterOperator.ResponseBody,
        FilterNot not => ReadsBodies(not.Operand),
        FilterJunction junction => junction.Operands.Any(ReadsBodies),
        _ => false,
    };

    /// <summary>Whether <paramref name="node"/> reads only what the <c>flows</c> columns hold, so it can be evaluated
    /// on a <see cref="ColumnFlow"/> without decoding the stored flow.</summary>
    private static bool ReadsColumnsOnly(FilterNode node) => node switch
    {
        FilterPattern p => p.Operator is FilterOperator.Method or FilterOperator.Url,
        FilterStatusCode => true,
        FilterFlag f => f.Operator is FilterOperator.All or FilterOperator.Error or FilterOperator.Http or FilterOperator.Tcp
            or FilterOperator.Udp or FilterOperator.Dns or FilterOperator.Request or FilterOperator.Response,
        FilterNot not => ReadsColumnsOnly(not.Operand),
        FilterJunction junction => junction.Operands.All(ReadsColumnsOnly),
        _ => false,
    };

    /// <summary>The rows a filter selects, on a read connection of their own: the pushed-down WHERE, then the residual.</summary>
    /// <remarks>
    /// Four ways to read, cheapest first: the seq alone (an exact WHERE, when only ids or a count are wanted); the
    /// columns (a residual that reads only them, such as a <c>~u</c> regex: evaluated without parsing JSON, which is
    /// then read only for the rows that match); the listing (the columns and what a list shows, JSON read only for a
    /// residual that needs it); the JSON of every row the WHERE returns.
    /// </remarks>
    private sealed class Rows : IDisposable
    {
        /// <summary>The columns <see cref="ColumnFlow.Load"/> reads (0-5), then <see cref="Listing"/>'s (6-17).</summary>
        private const string ColumnSelect = "SELECT f.seq, f.kind, f.method, f.url, f.status_code, f.error";

        private const string ListingColumns = ", f.id, f.started_at, f.client, f.server, f.error_phase, f.error_message,"
            + " f.response_bytes, f.request_bytes, f.duration_ms, f.tunnel_kind, f.tunnel_host, f.tunnel_port";

        /// <summary>For a listing whose residual needs the flow: the flow and chains in the same scan (18-20), cheaper
        /// than a lookup per row.</summary>
        private const string ListingChainColumns = ", f.server_chain, f.client_chain";

        private const int ListingFlowOrdinal = 18;

        private readonly SqliteFlowStore _store;
        private readonly SqliteConnection _connection;
        private readonly bool _ownsConnection;
        private readonly SqliteCommand _command;
        private readonly SqliteDataReader _reader;
        private readonly FilterNode? _residual;
        private readonly bool _exact;
        private readonly bool _onColumns;
        private readonly bool _seqOnly;
        private readonly ColumnFlow _columns = new();
        private readonly CertificateChains _chains;
        private SqliteCommand? _flowBySeq;
        private SqliteCommand? _bodies;

        /// <summary>Runs the query: on <paramref name="connection"/> (a read transaction's; the caller disposes it), or on
        /// a read connection of its own when null.</summary>
        public Rows(SqliteFlowStore store, FlowFilter? filter, bool selectJson, bool listing = false, int offset = 0, SqliteConnection? connection = null)
        {
            _store = store;
            _ownsConnection = connection is null;
            var plan = filter is null ? null : FilterSqlPushDown.Plan(filter.Root, Columns);
            _residual = plan?.Residual;
            _exact = plan is null || plan.IsExact;
            _seqOnly = _exact && !selectJson && !listing;
            _onColumns = _residual is not null && ReadsColumnsOnly(_residual);
            ResidualReadsBodies = _residual is not null && ReadsBodies(_residual);
            try
            {
                _connection = connection ?? Connect(store._path, SqliteOpenMode.ReadOnly);
                _chains = new CertificateChains(_connection);
                _command = _connection.CreateCommand();
                var select = listing ? ColumnSelect + ListingColumns + (_residual is not null && !_onColumns ? ", " + store.FlowColumn + ListingChainColumns : string.Empty) + " FROM flows f"
                    : _seqOnly ? "SELECT f.seq FROM flows f"
                    : _onColumns ? ColumnSelect + " FROM flows f"
                    : store.FlowSelect;
                _command.CommandText = select + (plan is null ? string.Empty : " WHERE (" + plan.WhereClause + ")") + " ORDER BY f.seq";
                if (offset > 0 && _residual is null)
                {
                    // Every row the WHERE clause returns matches: SQLite skips them (LIMIT -1: no limit,
                    // https://www.sqlite.org/lang_select.html#limitoffset).
                    _command.CommandText += " LIMIT -1 OFFSET $offset";
                    _command.Parameters.AddWithValue("$offset", offset);
                    OffsetInSql = true;
                }

                foreach (var parameter in plan?.Parameters ?? [])
                {
                    _command.Parameters.AddWithValue(parameter.Name, parameter.Value);
                }

                _reader = _command.ExecuteReader();
            }
            catch (SqliteException ex)
            {
                Dispose();
                throw Translate(store._path, ex);
            }
        }

        public bool ResidualReadsBodies { get; }

        /// <summary>Up to <paramref name="limit"/> matching flows from position <paramref name="offset"/> (the offset
        /// given to the constructor), with their bodies only when asked (a residual filter may read them anyway).</summary>
        public IEnumerable<Flow> Read(int offset, int limit, bool includeBodies, CancellationToken cancellationToken)
        {
            var bodies = includeBodies || ResidualReadsBodies;

            // A filter evaluated (in part) in memory cannot skip in SQL: the skipped flows are read and dropped.
            for (var skip = OffsetInSql ? 0 : offset; skip > 0 && Next(bodies, cancellationToken) is not null; skip--)
            {
            }

            for (var left = limit; left > 0 && Next(bodies, cancellationToken) is { } flow; left--)
            {
                yield return !includeBodies && bodies ? WithoutBodies(flow) : flow;
            }
        }

        /// <summary>Whether the offset given to the constructor was applied by SQLite (no residual filter).</summary>
        public bool OffsetInSql { get; }

        public Flow? Next(bool bodies, CancellationToken cancellationToken)
        {
            try
            {
                while (_reader.Read())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var seq = _reader.GetInt64(0);
                    if (_onColumns && !_residual!.Matches(_columns.Load(_reader)))
                    {
                        continue;
                    }

                    var flow = _onColumns ? FlowBySeq(seq) : _store.ReadFlow(_reader, _chains);
                    if (bodies)
                    {
                        _bodies ??= BodiesCommand(_connection);
                        flow = WithBodies(_bodies, seq, flow);
                    }

                    if (_onColumns || _residual is null || _residual.Matches(flow.AsFilterable()))
                    {
                        return flow;
                    }
                }

                return null;
            }
            catch (SqliteException ex)
            {
                throw Translate(_store._path, ex);
            }
        }

        /// <summary>The next matching row as a listing (the reader was opened with <c>listing: true</c>).</summary>
        public FlowListing? NextListing(CancellationToken cancellationToken)
        {
            try
            {
                while (_reader.Read())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (_residual is not null && !(_onColumns ? _residual.Matches(_columns.Load(_reader)) : MatchesFlow()))
                    {
                        continue;
                    }

                    return Listing(_reader);
                }

                return null;
            }
            catch (SqliteException ex)
            {
                throw Translate(_store._path, ex);
            }
        }

        public long? NextSeq(CancellationToken cancellationToken)
        {
            if (_seqOnly || _onColumns)
            {
                try
                {
                    while (_reader.Read())
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        if (_seqOnly || _residual!.Matches(_columns.Load(_reader)))
                        {
                            return _reader.GetInt64(0);
                        }
                    }

                    return null;
                }
                catch (SqliteException ex)
                {
                    throw Translate(_store._path, ex);
                }
            }

            return Next(ResidualReadsBodies, cancellationToken) is null ? null : _reader.GetInt64(0);
        }

        public long Count(CancellationToken cancellationToken)
        {
            long count = 0;
            while (NextSeq(cancellationToken) is not null)
            {
                count++;
            }

            return count;
        }

        public void Dispose()
        {
            _flowBySeq?.Dispose();
            _bodies?.Dispose();
            _chains?.Dispose();
            _reader?.Dispose();
            _command?.Dispose();
            if (_ownsConnection)
            {
                _connection?.Dispose();
            }
        }

        private static FlowListing Listing(SqliteDataReader r)
        {
            string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
            long? Integer(int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
            var idBytes = (byte[])r.GetValue(6);
            return new FlowListing(new Guid(idBytes, bigEndian: true), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7)), r.GetString(1) == "http")
            {
                Method = Text(2),
                Url = Text(3),
                StatusCode = r.IsDBNull(4) ? null : r.GetInt32(4),
                Client = Text(8),
                Server = Text(9),
                ErrorPhase = Text(10),
                ErrorMessage = Text(11),
                ResponseBytes = Integer(12),
                RequestBytes = Integer(13),
                DurationMs = r.IsDBNull(14) ? null : r.GetDouble(14),
                TunnelKind = Text(15) is { } kind && Enum.TryParse<TunnelKind>(kind, out var k) ? k : null,
                TunnelHost = Text(16),
                TunnelPort = r.IsDBNull(17) ? null : r.GetInt32(17),
            };
        }

        private bool MatchesFlow()
        {
            var flow = _store.ReadFlow(_reader, _chains, ListingFlowOrdinal);
            if (ResidualReadsBodies)
            {
                _bodies ??= BodiesCommand(_connection);
                flow = WithBodies(_bodies, _reader.GetInt64(0), flow);
            }

            return _residual!.Matches(flow.AsFilterable());
        }

        private Flow FlowBySeq(long seq)
        {
            if (_flowBySeq is null)
            {
                _flowBySeq = _connection.CreateCommand();
                _flowBySeq.CommandText = _store.FlowSelect + " WHERE f.seq = $seq";
                _flowBySeq.Parameters.Add("$seq", SqliteType.Integer);
            }

            _flowBySeq.Parameters[0].Value = seq;
            using var reader = _flowBySeq.ExecuteReader();
            return reader.Read() ? _store.ReadFlow(reader, _chains) : throw new FlowStoreException(_store._path, FlowStoreProblem.Corrupt, $"flow {seq} has no JSON row");
        }
    }
}
