using System.Buffers;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>The statements (and the record buffer) a writable store's commits reuse, so each is compiled once.</summary>
internal sealed class WriteStatements : IDisposable
{
    public WriteStatements(SqliteConnection connection)
    {
        Flow = new FlowInsert(connection);
        Body = new RawStatement(connection, "INSERT INTO bodies (key, content) VALUES (?1, ?2)");
        BodyDelete = new RawStatement(connection, "DELETE FROM bodies WHERE key IN (?1 * 2, ?1 * 2 + 1)");
        Certificate = new RawStatement(connection, "INSERT OR IGNORE INTO certificates (sha256, der) VALUES (?1, ?2)");
    }

    public FlowInsert Flow { get; }

    /// <summary>Parameters: the key (seq * 2 + part), the bytes.</summary>
    public RawStatement Body { get; }

    /// <summary>Parameter: the seq of a replaced flow.</summary>
    public RawStatement BodyDelete { get; }

    /// <summary>Parameters: the SHA-256, the DER.</summary>
    public RawStatement Certificate { get; }

    /// <summary>The buffer each flow's record (<see cref="FlowRecord"/>) is written into, kept between commits.</summary>
    public ArrayBufferWriter<byte> Record { get; } = new(4096);

    public void Dispose()
    {
        Flow.Dispose();
        Body.Dispose();
        BodyDelete.Dispose();
        Certificate.Dispose();
    }
}
