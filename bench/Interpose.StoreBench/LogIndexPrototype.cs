using System.Buffers;
using Interpose.Core.Flows;
using Interpose.Store;
using Microsoft.Data.Sqlite;

/// <summary>
/// A measurement, not a store: what recording would cost with the design docs/performance.md names as the way to 0.85
/// ("Not done yet"): each flow's record and body bytes appended to a log file in large sequential writes, and only the
/// filterable columns and the flow's place in the log in SQLite (one narrow row a flow, the same id and status indexes,
/// no body rows, no record in the row). It encodes the same <see cref="FlowRecord"/> and binds through the same
/// <see cref="RawStatement"/> as <see cref="SqliteFlowStore"/>, commits every <c>batch</c> flows after writing the log's
/// bytes out (so no row points past them), and leaves out what it would take to be a store: reading, certificates,
/// crash recovery of the log's tail.
/// </summary>
internal static class LogIndexPrototype
{
    /// <summary>Writes <paramref name="flows"/> into <paramref name="path"/> (the index) and <paramref name="path"/>.log.</summary>
    /// <param name="path">The index file (new); the log is beside it.</param>
    /// <param name="flows">HTTP flows.</param>
    /// <param name="batch">Flows per transaction.</param>
    /// <param name="inFile">True: the log's bytes go into the same SQLite file instead, one row of a <c>segments</c>
    /// table per batch (one file, as the store is; the bytes then pass through the WAL and a checkpoint).</param>
    public static void Write(string path, IReadOnlyList<Flow> flows, int batch, bool inFile = false)
    {
        // 1 MiB: the log reaches the file in writes of about that size, as a recorder's batches would.
        const int LogBufferBytes = 1 << 20;
        using var log = inFile ? (Stream)new MemoryStream(LogBufferBytes) : new FileStream(path + ".log", FileMode.Create, FileAccess.Write, FileShare.Read, LogBufferBytes);
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        Execute(connection, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        Execute(connection, """
            CREATE TABLE flows (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, started_at INTEGER NOT NULL, method TEXT,
                host TEXT, url TEXT, status_code INTEGER, error INTEGER NOT NULL, at INTEGER NOT NULL, record INTEGER NOT NULL,
                request_body INTEGER NOT NULL, response_body INTEGER NOT NULL);
            CREATE INDEX flows_status_code ON flows (status_code);
            CREATE TABLE segments (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
            """);
        using var segment = new RawStatement(connection, "INSERT INTO segments (data) VALUES (?1)");
        using var insert = new RawStatement(connection, """
            INSERT INTO flows (id, started_at, method, host, url, status_code, error, at, record, request_body, response_body)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
            """);
        var record = new ArrayBufferWriter<byte>(4096);
        Span<byte> id = stackalloc byte[16];
        long at = 0;
        SqliteTransaction? transaction = null;
        var inBatch = 0;
        foreach (var flow in flows)
        {
            var http = (HttpFlow)flow;
            transaction ??= connection.BeginTransaction();
            record.ResetWrittenCount();
            FlowRecord.Write(record, flow);
            var requestBody = http.Request.Body.Content.Span;
            var responseBody = http.Response is { } response ? response.Body.Content.Span : default;
            log.Write(record.WrittenSpan);
            log.Write(requestBody);
            log.Write(responseBody);

            flow.Id.TryWriteBytes(id, bigEndian: true, out _);
            insert.BindBlob(1, id);
            insert.Bind(2, flow.StartedAt.ToUnixTimeMilliseconds());
            insert.Bind(3, http.Request.Method);
            insert.Bind(4, http.Request.Host);
            insert.Bind(5, http.AsFilterable().Url);
            insert.Bind(6, (long?)http.Response?.StatusCode);
            insert.Bind(7, flow.Error is null ? 0 : 1);
            insert.Bind(8, at);
            insert.Bind(9, record.WrittenCount);
            insert.Bind(10, requestBody.Length);
            insert.Bind(11, responseBody.Length);
            insert.Execute();
            at += record.WrittenCount + requestBody.Length + responseBody.Length;
            if (++inBatch == batch)
            {
                Flush();
                transaction.Commit();
                transaction.Dispose();
                transaction = null;
                inBatch = 0;
            }
        }

        if (transaction is not null)
        {
            Flush();
            transaction.Commit();
            transaction.Dispose();
        }

        void Flush()
        {
            if (log is MemoryStream memory)
            {
                segment.BindBlob(1, memory.GetBuffer().AsSpan(0, (int)memory.Length));
                segment.Execute();
                memory.SetLength(0);
            }
            else
            {
                log.Flush();
            }
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
