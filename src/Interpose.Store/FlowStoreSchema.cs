using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>
/// The file format: SQLite with <see cref="ApplicationId"/> in the header and the schema version in
/// <c>PRAGMA user_version</c>, moved forward one step at a time by <see cref="Migrations"/>.
/// </summary>
/// <remarks>
/// <code>
/// flows      seq INTEGER PRIMARY KEY (append order), id BLOB(16) UNIQUE, kind, started_at (Unix ms),
///            method, host, url, status_code, error: the columns FilterSqlPushDown reads, narrow so a scan is cheap
/// flow_json  seq → the flow as FlowJson (UTF-8), body bytes left out (length and SHA-256 kept)
/// bodies     key = seq * 2 + part → the recorded body bytes; part 0 the request's, 1 the response's (a rowid key:
///            SQLite stores large rows best in rowid tables, https://www.sqlite.org/withoutrowid.html §4)
/// </code>
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

    /// <summary>
    /// Step <c>i</c> takes a file from version <c>i</c> to <c>i + 1</c>. Only append: a released step never changes.
    /// Every step so far adds tables or indexes only, so a reader accepts any version up to <see cref="CurrentVersion"/>.
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
    ];

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
