using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Interpose.Store;

/// <summary>
/// A write statement prepared once on a store's connection and run through SQLite's C API (SQLitePCL's <c>raw</c>)
/// rather than an <see cref="SqliteCommand"/>: values are bound from spans (no boxing, no <c>byte[]</c> copy of a body or
/// the JSON, no string made for a column SQLite copies anyway), and nothing is allocated per run. The recorder's
/// commit binds 21 values and two bodies per flow; through <see cref="SqliteParameter"/> the binding alone was 3.7% of
/// the proxy's busy time under load with <c>-w</c> (docs/performance.md, "Recording").
/// </summary>
/// <remarks>
/// It runs inside whatever transaction the connection has open (a <see cref="SqliteTransaction"/> begun on it). It must
/// be disposed before the connection is: SQLite closes a connection with unfinalized statements only lazily
/// (https://www.sqlite.org/c3ref/close.html). Parameters are numbered from 1 in the order of <c>?</c> in the SQL.
/// </remarks>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;

    public RawStatement(SqliteConnection connection, string sql)
    {
        _db = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");

        // SQLITE_PREPARE_PERSISTENT: kept for the store's lifetime (https://www.sqlite.org/c3ref/c_prepare_normalize.html).
        Check(raw.sqlite3_prepare_v3(_db, sql, raw.SQLITE_PREPARE_PERSISTENT, out _statement));
    }

    /// <summary>The rowid of the last row inserted on the connection (https://www.sqlite.org/c3ref/last_insert_rowid.html).</summary>
    public long LastInsertRowId => raw.sqlite3_last_insert_rowid(_db);

    /// <summary>The rows the last completed statement on the connection changed (https://www.sqlite.org/c3ref/changes.html).</summary>
    public int Changes => raw.sqlite3_changes(_db);

    public void Bind(int index, long value) => Check(raw.sqlite3_bind_int64(_statement, index, value));

    public void Bind(int index, long? value) => Check(value is { } v ? raw.sqlite3_bind_int64(_statement, index, v) : raw.sqlite3_bind_null(_statement, index));

    public void Bind(int index, double? value) => Check(value is { } v ? raw.sqlite3_bind_double(_statement, index, v) : raw.sqlite3_bind_null(_statement, index));

    /// <summary>Binds text (null as NULL); SQLite copies it, converted to the file's UTF-8.</summary>
    public void Bind(int index, string? value) => Check(value is null ? raw.sqlite3_bind_null(_statement, index) : raw.sqlite3_bind_text16(_statement, index, value.AsSpan()));

    public void BindText(int index, ReadOnlySpan<char> value) => Check(raw.sqlite3_bind_text16(_statement, index, value));

    /// <summary>Binds a blob; SQLite copies it (SQLITE_TRANSIENT), so the span may be reused once this returns.</summary>
    public void BindBlob(int index, ReadOnlySpan<byte> value) => Check(raw.sqlite3_bind_blob(_statement, index, value));

    public void BindNull(int index) => Check(raw.sqlite3_bind_null(_statement, index));

    /// <summary>Runs the statement to its end and resets it for the next run.</summary>
    /// <exception cref="SqliteException">SQLite failed (a constraint, a full disk, ...).</exception>
    public void Execute()
    {
        try
        {
            int rc;
            while ((rc = raw.sqlite3_step(_statement)) == raw.SQLITE_ROW)
            {
            }

            if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, _db);
            }
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    /// <summary>Runs a statement that returns one integer (<c>RETURNING</c>), resets it, and returns the integer.</summary>
    /// <exception cref="SqliteException">SQLite failed.</exception>
    public long ExecuteScalar()
    {
        try
        {
            var rc = raw.sqlite3_step(_statement);
            if (rc != raw.SQLITE_ROW)
            {
                SqliteException.ThrowExceptionForRC(rc == raw.SQLITE_DONE ? raw.SQLITE_MISUSE : rc, _db);
            }

            var value = raw.sqlite3_column_int64(_statement, 0);
            while ((rc = raw.sqlite3_step(_statement)) == raw.SQLITE_ROW)
            {
            }

            if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, _db);
            }

            return value;
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    public void Dispose() => _statement.Dispose();

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }
}
