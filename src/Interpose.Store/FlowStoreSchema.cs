using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>
/// The file format: SQLite with <see cref="ApplicationId"/> in the header and the schema version in
/// <c>PRAGMA user_version</c>, moved forward one step at a time by <see cref="Migrations"/>.
/// </summary>
/// <remarks>
/// <code>
/// flows        seq INTEGER PRIMARY KEY (append order), id BLOB(16) UNIQUE, kind, started_at (Unix ms), method, host,
///              url, status_code, error: the columns FilterSqlPushDown reads; then (version 3) what a list shows
///              (client, server, error_phase, error_message, response_bytes, request_bytes, duration_ms, tunnel_kind,
///              tunnel_host, tunnel_port), the certificate chains as keys (server_chain, client_chain: the SHA-256 of
///              each certificate, 32 bytes each, leaf first) and, last, flow (json before version 4): the flow without
///              body bytes (length and SHA-256 kept) and without certificates, as a binary FlowRecord (version 4) or
///              as FlowJson (UTF-8; rows written before version 4), told apart by the first byte
///              (FlowRecord.IsRecord). One row, one insert per flow.
/// certificates sha256 BLOB(32) PRIMARY KEY → der: each certificate once, however many flows presented it
/// bodies       key = seq * 2 + part → the recorded body bytes; part 0 the request's, 1 the response's (a rowid key:
///              SQLite stores large rows best in rowid tables, https://www.sqlite.org/withoutrowid.html §4)
/// </code>
/// Versions 1 and 2 kept the JSON (certificates inside) in a table of its own, <c>flow_json</c>: three inserts a flow.
/// A reader reads them as they are; a writer migrates them (the JSON moves into <c>flows</c>, certificates stay inline
/// in those flows' JSON, which a reader takes as it is when the chain columns are null).
/// </remarks>
internal static class FlowStoreSchema
{
    /// <summary>"IPFS" (Interpose flow store) in SQLite's application id field, so `file` and this code tell a flow store
    /// from any other SQLite database (https://www.sqlite.org/pragma.html#pragma_application_id).</summary>
    public const int ApplicationId = 0x49504653;

    /// <summary>Part number of a request body in <c>bodies</c>.</summary>
    public const int RequestPart = 0;

    /// <summary>Part number of a response body in <c>bodies</c>.</summary>
    public const int ResponsePart = 1;

    /// <summary>The columns step 2 → 3 adds to <c>flows</c>, in order (the JSON last).</summary>
    private static readonly string[] Version3Columns =
    [
        "client TEXT", "server TEXT", "error_phase TEXT", "error_message TEXT", "response_bytes INTEGER", "request_bytes INTEGER",
        "duration_ms REAL", "tunnel_kind TEXT", "tunnel_host TEXT", "tunnel_port INTEGER", "server_chain BLOB", "client_chain BLOB",
        "json BLOB",
    ];

    /// <summary>
    /// Step <c>i</c> takes a file from version <c>i</c> to <c>i + 1</c>. Only append: a released step never changes.
    /// A reader accepts any version from 1 up to <see cref="CurrentVersion"/>: before <see cref="OneRowVersion"/> it
    /// reads the JSON from <c>flow_json</c> (<see cref="FlowJoin"/>).
    /// </summary>
    public static readonly string[] Migrations =
    [
        // 0 → 1: the tables.
        """
        CREATE TABLE flows (
            seq INTEGER PRIMARY KEY,
            id BLOB NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            method TEXT,
            host TEXT,
            url TEXT,
            status_code INTEGER,
            error INTEGER NOT NULL
        );
        CREATE TABLE flow_json (seq INTEGER PRIMARY KEY, json BLOB NOT NULL);
        CREATE TABLE bodies (key INTEGER PRIMARY KEY, content BLOB NOT NULL);
        """,

        // 1 → 2: the index for ~c (the push-down's exact status_code IS N); LIKE conditions scan the narrow flows table.
        "CREATE INDEX flows_status_code ON flows (status_code);",

        // 2 → 3: one row per flow (the JSON and the list's columns in flows), certificates stored once. The list columns
        // of migrated rows are filled from their JSON (SQLite's JSON functions, built in since 3.38); their
        // certificates stay inside their JSON. The JSON is read as text (a BLOB argument would be taken as JSONB).
        string.Concat(Version3Columns.Select(column => $"ALTER TABLE flows ADD COLUMN {column};\n")) + """
        CREATE TABLE certificates (sha256 BLOB PRIMARY KEY, der BLOB NOT NULL) WITHOUT ROWID;
        UPDATE flows SET
            json = j.json,
            client = json_extract(j.t, '$.client.host') || ':' || json_extract(j.t, '$.client.port'),
            server = json_extract(j.t, '$.server.host') || ':' || json_extract(j.t, '$.server.port'),
            error_phase = json_extract(j.t, '$.error.phase'),
            error_message = json_extract(j.t, '$.error.message'),
            response_bytes = coalesce(json_extract(j.t, '$.response.body.length'), json_extract(j.t, '$.bytesFromServer')),
            request_bytes = json_extract(j.t, '$.bytesFromClient'),
            duration_ms = coalesce(json_extract(j.t, '$.timings.done'), json_extract(j.t, '$.durationMs')),
            tunnel_kind = json_extract(j.t, '$.kind'),
            tunnel_host = CASE WHEN flows.kind = 'tunnel' THEN json_extract(j.t, '$.host') END,
            tunnel_port = CASE WHEN flows.kind = 'tunnel' THEN json_extract(j.t, '$.port') END
        FROM (SELECT seq, json, CAST(json AS TEXT) AS t FROM flow_json) j WHERE j.seq = flows.seq;
        DROP TABLE flow_json;
        """,

        // 3 → 4: the flow column holds a binary FlowRecord from now on (smaller and quicker to write than the JSON:
        // docs/performance.md, "Recording, fifth pass"). Rows already written keep their JSON; a reader tells the two
        // apart by the first byte. Renaming a column rewrites only the schema (https://www.sqlite.org/lang_altertable.html).
        "ALTER TABLE flows RENAME COLUMN json TO flow;",
    ];

    /// <summary>The first version with the JSON in <c>flows</c> (one row per flow) and the list's columns.</summary>
    public const int OneRowVersion = 3;

    /// <summary>The first version whose flow column is named <c>flow</c> and holds a binary record for new rows.</summary>
    public const int RecordVersion = 4;

    /// <summary>Where a query finds a flow's stored form (JSON or record) in a file of <paramref name="version"/>: the
    /// join to add after <c>FROM flows f</c>, and the column.</summary>
    public static (string Join, string Column) FlowJoin(int version) => version switch
    {
        >= RecordVersion => (string.Empty, "f.flow"),
        >= OneRowVersion => (string.Empty, "f.json"),
        _ => (" JOIN flow_json j ON j.seq = f.seq", "j.json"),
    };

    /// <summary>The version this code writes.</summary>
    public static int CurrentVersion => Migrations.Length;

    /// <summary>Runs the steps from <paramref name="from"/> up to <paramref name="to"/>, each in its own transaction
    /// with the version bump, so a crash mid-way leaves a file at a consistent version.</summary>
    public static void Migrate(SqliteConnection connection, int from, int to)
    {
        for (var version = from; version < to; version++)
        {
            using var transaction = connection.BeginTransaction();
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Migrations[version]
                + (version == 0 ? $"\nPRAGMA application_id = {ApplicationId};" : string.Empty)
                + $"\nPRAGMA user_version = {version + 1};";
            command.ExecuteNonQuery();
            transaction.Commit();
        }
    }
}
