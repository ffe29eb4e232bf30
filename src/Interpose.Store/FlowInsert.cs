using Interpose.Core.Flows;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>The one insert of a flow's row (schema version 4): its filter and list columns, certificate keys and record.
/// A new id (always, for a recorder) is a plain insert with the <c>seq</c> the store gives it; an id already stored
/// keeps its <c>seq</c> and takes the new values.</summary>
internal sealed class FlowInsert : IDisposable
{
    private static readonly string[] Columns =
    [
        "id", "kind", "started_at", "method", "host", "url", "status_code", "error", "client", "server", "error_phase",
        "error_message", "response_bytes", "request_bytes", "duration_ms", "tunnel_kind", "tunnel_host", "tunnel_port",
        "server_chain", "client_chain", "flow",
    ];

    /// <summary>INSERT OR IGNORE: a new row, or nothing when the id is stored (<see cref="RawStatement.Changes"/> 0). The
    /// upsert with <c>RETURNING seq</c> it replaces was 10% of the proxy's busy time under load with <c>-w</c>
    /// (docs/performance.md, "Recording"). The seq is given (the last parameter), not SQLite's next rowid: that is one
    /// more than the largest left, so deleting the newest flows would give their numbers again, which the store's
    /// observer must never see (<see cref="IFlowStoreObserver"/>).</summary>
    private readonly RawStatement _insert;

    /// <summary>The row of a stored id takes the new values and keeps its seq (a flow appended again: a mark, a comment).</summary>
    private readonly RawStatement _update;

    /// <summary>Room on the stack for an address as text: an IPv6 literal with a zone (at most 46 + a zone) or a short
    /// host name, a colon and a port; longer hosts take the string path.</summary>
    private const int MaxEndpointChars = 128;

    /// <summary>A port's digits at most (an int, with a sign, to be safe).</summary>
    private const int MaxPortChars = 11;

    public FlowInsert(SqliteConnection connection)
    {
        var values = string.Join(", ", Columns.Select((_, i) => "?" + (i + 1)));
        _insert = new RawStatement(connection, $"INSERT OR IGNORE INTO flows ({string.Join(", ", Columns)}, seq) VALUES ({values}, ?{Columns.Length + 1})");
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
    /// <param name="record">The flow's record (<see cref="FlowRecord"/>), the <c>flow</c> column.</param>
    /// <param name="newSeq">The seq of a new row.</param>
    /// <param name="replaced">True when a stored row of the same id was replaced (its bodies are now stale).</param>
    /// <returns>The row's <c>seq</c>: <paramref name="newSeq"/>, or the replaced row's.</returns>
    /// <exception cref="SqliteException">SQLite failed (a full disk, a read-only file).</exception>
    public long Insert(Flow flow, byte[]? serverChain, byte[]? clientChain, ReadOnlySpan<byte> record, long newSeq, out bool replaced)
    {
        Bind(_insert, flow, serverChain, clientChain, record);
        _insert.Bind(Columns.Length + 1, newSeq);
        _insert.Execute();
        if (_insert.Changes == 1)
        {
            replaced = false;
            return newSeq;
        }

        replaced = true;
        Bind(_update, flow, serverChain, clientChain, record);
        return _update.ExecuteScalar();
    }

    public void Dispose()
    {
        _insert.Dispose();
        _update.Dispose();
    }

    /// <summary>Binds the row's values: <see cref="FlowListing.From"/>'s columns, read from the flow itself rather than
    /// through a listing (its strings were a tenth of what recording allocated per flow), the addresses formatted on
    /// the stack.</summary>
    private static void Bind(RawStatement statement, Flow flow, byte[]? serverChain, byte[]? clientChain, ReadOnlySpan<byte> record)
    {
        var http = flow as HttpFlow;
        var tunnel = flow as TunnelFlow;
        Span<byte> id = stackalloc byte[16];
        flow.Id.TryWriteBytes(id, bigEndian: true, out _);
        statement.BindBlob(1, id);
        statement.Bind(2, http is not null ? "http" : "tunnel");
        statement.Bind(3, flow.StartedAt.ToUnixTimeMilliseconds());
        statement.Bind(4, http?.Request.Method);
        statement.Bind(5, http?.Request.Host);

        // The filter's URL (the Host header's authority where the request line had none), as the flow log.
        statement.Bind(6, http?.AsFilterable().Url);
        statement.Bind(7, (long?)http?.Response?.StatusCode);
        statement.Bind(8, flow.Error is null ? 0 : 1);
        BindEndpoint(9, flow.Client);
        BindEndpoint(10, flow.Server);
        statement.Bind(11, flow.Error?.Phase);
        statement.Bind(12, flow.Error?.Message);
        statement.Bind(13, http is not null ? http.Response?.Body.Length : tunnel?.BytesFromServer);
        statement.Bind(14, tunnel?.BytesFromClient);
        statement.Bind(15, http is not null ? http.Timings.Done : tunnel?.DurationMs);
        statement.Bind(16, tunnel?.Kind.ToString());
        statement.Bind(17, tunnel?.Host);
        statement.Bind(18, (long?)tunnel?.Port);
        BindBlob(19, serverChain);
        BindBlob(20, clientChain);
        statement.BindBlob(21, record);

        // FlowEndpoint.ToString's form (host:port), without the string.
        void BindEndpoint(int index, FlowEndpoint? endpoint)
        {
            if (endpoint is null)
            {
                statement.BindNull(index);
                return;
            }

            Span<char> text = stackalloc char[MaxEndpointChars];
            if (endpoint.Host.Length + 1 + MaxPortChars > text.Length)
            {
                statement.Bind(index, endpoint.ToString());
                return;
            }

            endpoint.Host.CopyTo(text);
            text[endpoint.Host.Length] = ':';
            endpoint.Port.TryFormat(text[(endpoint.Host.Length + 1)..], out var digits, provider: System.Globalization.CultureInfo.InvariantCulture);
            statement.BindText(index, text[..(endpoint.Host.Length + 1 + digits)]);
        }

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
