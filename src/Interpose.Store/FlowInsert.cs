using Interpose.Core.Flows;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>The one insert of a flow's row (schema version 3): its filter and list columns, certificate keys and JSON;
/// an id already stored keeps its <c>seq</c> and takes the new values.</summary>
internal sealed class FlowInsert : IDisposable
{
    private readonly SqliteCommand _command;
    private readonly SqliteParameter[] _values;

    public FlowInsert(SqliteConnection connection)
    {
        string[] columns =
        [
            "id", "kind", "started_at", "method", "host", "url", "status_code", "error", "client", "server", "error_phase",
            "error_message", "response_bytes", "request_bytes", "duration_ms", "tunnel_kind", "tunnel_host", "tunnel_port",
            "server_chain", "client_chain", "json",
        ];
        _command = connection.CreateCommand();
        _command.CommandText = $"""
            INSERT INTO flows ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select(c => "$" + c))})
            ON CONFLICT (id) DO UPDATE SET {string.Join(", ", columns.Skip(1).Select(c => c + " = excluded." + c))}
            RETURNING seq
            """;
        _values = [.. columns.Select(c => _command.Parameters.Add(new SqliteParameter { ParameterName = "$" + c }))];
    }

    /// <summary>The transaction the next inserts run in.</summary>
    public SqliteTransaction? Transaction { set => _command.Transaction = value; }

    /// <summary>Binds everything but the JSON.</summary>
    public void Set(Flow flow, byte[]? serverChain, byte[]? clientChain)
    {
        var listing = FlowListing.From(flow);
        var i = 0;
        Bind(flow.Id.ToByteArray(bigEndian: true));
        Bind(listing.IsHttp ? "http" : "tunnel");
        Bind(flow.StartedAt.ToUnixTimeMilliseconds());
        Bind(listing.Method);
        Bind((flow as HttpFlow)?.Request.Host);
        Bind(listing.Url);
        Bind(listing.StatusCode);
        Bind(flow.Error is null ? 0 : 1);
        Bind(listing.Client);
        Bind(listing.Server);
        Bind(listing.ErrorPhase);
        Bind(listing.ErrorMessage);
        Bind(listing.ResponseBytes);
        Bind(listing.RequestBytes);
        Bind(listing.DurationMs);
        Bind(listing.TunnelKind?.ToString());
        Bind(listing.TunnelHost);
        Bind(listing.TunnelPort);
        Bind(serverChain);
        Bind(clientChain);

        void Bind(object? value) => _values[i++].Value = value ?? DBNull.Value;
    }

    /// <summary>Binds the JSON and runs the insert.</summary>
    /// <returns>The row's <c>seq</c>.</returns>
    public long Execute(ReadOnlySpan<byte> json)
    {
        _values[^1].Value = json.ToArray();
        return (long)_command.ExecuteScalar()!;
    }

    public void Dispose() => _command.Dispose();
}
