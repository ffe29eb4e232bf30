using System.Buffers;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>The statements (and the JSON buffer) a writable store's commits reuse, so each is compiled once.</summary>
internal sealed class WriteStatements : IDisposable
{
    public WriteStatements(SqliteConnection connection)
    {
        Flow = new FlowInsert(connection);
        Body = Command(connection, "INSERT INTO bodies (key, content) VALUES ($key, $content)", "$key", "$content");
        BodyDelete = Command(connection, "DELETE FROM bodies WHERE key IN ($seq * 2, $seq * 2 + 1)", "$seq");
        Certificate = Command(connection, "INSERT OR IGNORE INTO certificates (sha256, der) VALUES ($sha256, $der)", "$sha256", "$der");
        JsonWriter = new Utf8JsonWriter(Json);
    }

    public FlowInsert Flow { get; }

    /// <summary>Parameters: the key (seq * 2 + part), the bytes.</summary>
    public SqliteCommand Body { get; }

    /// <summary>Parameter: the seq of a replaced flow.</summary>
    public SqliteCommand BodyDelete { get; }

    /// <summary>Parameters: the SHA-256, the DER.</summary>
    public SqliteCommand Certificate { get; }

    /// <summary>The buffer each flow's JSON is written into, kept between commits.</summary>
    public ArrayBufferWriter<byte> Json { get; } = new(4096);

    public Utf8JsonWriter JsonWriter { get; }

    /// <summary>The transaction the statements run in; null between commits.</summary>
    public SqliteTransaction? Transaction
    {
        set
        {
            Flow.Transaction = value;
            Body.Transaction = value;
            BodyDelete.Transaction = value;
            Certificate.Transaction = value;
        }
    }

    public void Dispose()
    {
        Flow.Dispose();
        Body.Dispose();
        BodyDelete.Dispose();
        Certificate.Dispose();
        JsonWriter.Dispose();
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            // Typed by each value as it is bound.
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        return command;
    }
}
