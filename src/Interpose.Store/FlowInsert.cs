using Interpose.Core.Flows;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>The one insert of a flow's row (schema version 3): its filter and list columns, certificate keys and JSON.
/// A new id (always, for a recorder) is a plain insert; an id already stored keeps its <c>seq</c> and takes the new
/// values.</summary>
internal sealed class FlowInsert : IDisposable
{
    private static readonly string[] Columns =
    [
        "id", "kind", "started_at", "method", "host", "url", "status_code", "error", "client", "server", "error_phase",
        "error_message", "response_bytes", "request_bytes", "duration_ms", "tunnel_kind", "tunnel_host", "tunnel_port",
        "server_chain", "client_chain", "json",
    ];

    /// <summary>INSERT OR IGNORE: a new row, or nothing when the id is stored (<see cref="RawStatement.Changes"/> 0). The
    /// upsert with <c>RETURNING seq</c> it replaces was 10% of the proxy's busy time under load with <c>-w</c>
    /// (docs/performance.md, "Recording"); a new row's seq is <c>last_insert_rowid()</c>.</summary>
    private readonly RawStatement _insert;

    /// <summary>The row of a stored id takes the new values and keeps its seq (a flow appended again: a mark, a comment).</summary>
    private readonly RawStatement _update;

    public FlowInsert(SqliteConnection connection)
    {
        var values = string.Join(", ", Columns.Select((_, i) => "?" + (i + 1)));
        _insert = new RawStatement(connection, $"INSERT OR IGNORE INTO flows ({string.Join(", ", Columns)}) VALUES ({values})");
        _update = new RawStatement(connection, $"""
            INSERT INTO flows ({string.Join(", ", Columns)}) VALUES ({values})
            ON CONFLICT (id) DO UPDATE SET {string.Join(", ", Columns.Skip(1).Select(c => c + " = excluded." + c))}
            RETURNING seq
            """);
    }

    /// <summary>Inserts <paramref name="flow"/>'s row, or replaces the row of its id.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="serverChain">The server chain's keys (<c>server_chain</c>); null for none.</param>
    /// <param name="clientChain">The client chain's keys; null for none.</param>
    /// <param name="json">The flow's JSON column.</param>
    /// <param name="replaced">True when a stored row of the same id was replaced (its bodies are now stale).</param>
    /// <returns>The row's <c>seq</c>.</returns>
    /// <exception cref="SqliteException">SQLite failed (a full disk, a read-only file).</exception>
    public long Insert(Flow flow, byte[]? serverChain, byte[]? clientChain, ReadOnlySpan<byte> json, out bool replaced)
    {
        Bind(_insert, flow, serverChain, clientChain, json);
        _insert.Execute();
        if (_insert.Changes == 1)
        {
            replaced = false;
            return _insert.LastInsertRowId;
        }

        replaced = true;
        Bind(_update, flow, serverChain, clientChain, json);
        return _update.ExecuteScalar();
    }

    public void Dispose()
    {
        _insert.Dispose();
        _update.Dispose();
    }

    private static void Bind(RawStatement statement, Flow flow, byte[]? serverChain, byte[]? clientChain, ReadOnlySpan<byte> json)
    {
        var listing = FlowListing.From(flow);
        Span<byte> id = stackalloc byte[16];
        flow.Id.TryWriteBytes(id, bigEndian: true, out _);
        statement.BindBlob(1, id);
        statement.Bind(2, listing.IsHttp ? "http" : "tunnel");
        statement.Bind(3, flow.StartedAt.ToUnixTimeMilliseconds());
        statement.Bind(4, listing.Method);
        statement.Bind(5, (flow as HttpFlow)?.Request.Host);
        statement.Bind(6, listing.Url);
        statement.Bind(7, listing.StatusCode);
        statement.Bind(8, flow.Error is null ? 0 : 1);
        statement.Bind(9, listing.Client);
        statement.Bind(10, listing.Server);
        statement.Bind(11, listing.ErrorPhase);
        statement.Bind(12, listing.ErrorMessage);
        statement.Bind(13, listing.ResponseBytes);
        statement.Bind(14, listing.RequestBytes);
        statement.Bind(15, listing.DurationMs);
        statement.Bind(16, listing.TunnelKind?.ToString());
        statement.Bind(17, listing.TunnelHost);
        statement.Bind(18, listing.TunnelPort);
        BindBlob(19, serverChain);
        BindBlob(20, clientChain);
        statement.BindBlob(21, json);

        void BindBlob(int index, byte[]? value)
        {
            if (value is null)
            {
                statement.BindNull(index);
            }
            else
            {
                statement.BindBlob(index, value);
            }
        }
    }
}
