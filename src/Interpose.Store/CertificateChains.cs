using System.Buffers.Binary;
using System.Security.Cryptography;
using Interpose.Core.Flows;
using Microsoft.Data.Sqlite;

namespace Interpose.Store;

/// <summary>
/// Puts a flow's certificate chains back from the <c>certificates</c> table (schema version 3: the flow's row holds
/// each chain as its certificates' SHA-256, leaf first). Each certificate is read once per reader and then shared.
/// </summary>
internal sealed class CertificateChains(SqliteConnection connection) : IDisposable
{
    private readonly Dictionary<UInt128, byte[]> _read = [];
    private SqliteCommand? _select;

    /// <summary><paramref name="flow"/> with the chains named by the columns at <paramref name="serverOrdinal"/> and the
    /// one after it (server, client); the flow itself when both are null (a tunnel, no TLS, or a row migrated from
    /// version 2, whose JSON still holds its chain).</summary>
    /// <exception cref="FlowStoreException">A certificate named by the row is missing (the file is damaged).</exception>
    public Flow Attach(Flow flow, SqliteDataReader reader, int serverOrdinal, string path)
    {
        if (flow is not HttpFlow http || (reader.IsDBNull(serverOrdinal) && reader.IsDBNull(serverOrdinal + 1)))
        {
            return flow;
        }

        var server = Chain(reader, serverOrdinal, path);
        var client = Chain(reader, serverOrdinal + 1, path);
        return http with
        {
            ServerTls = server is null || http.ServerTls is null ? http.ServerTls : http.ServerTls with { CertificateChain = server },
            ClientTls = client is null || http.ClientTls is null ? http.ClientTls : http.ClientTls with { CertificateChain = client },
        };
    }

    public void Dispose() => _select?.Dispose();

    private byte[][]? Chain(SqliteDataReader reader, int ordinal, string path)
    {
        if (reader.IsDBNull(ordinal))
        {
            return null;
        }

        var keys = (byte[])reader.GetValue(ordinal);
        var chain = new byte[keys.Length / SHA256.HashSizeInBytes][];
        for (var i = 0; i < chain.Length; i++)
        {
            var key = keys.AsSpan(i * SHA256.HashSizeInBytes, SHA256.HashSizeInBytes);
            var cacheKey = BinaryPrimitives.ReadUInt128LittleEndian(key);
            if (!_read.TryGetValue(cacheKey, out var der))
            {
                if (_select is null)
                {
                    _select = connection.CreateCommand();
                    _select.CommandText = "SELECT der FROM certificates WHERE sha256 = $sha256";
                    _select.Parameters.Add("$sha256", SqliteType.Blob);
                }

                _select.Parameters[0].Value = key.ToArray();
                der = _select.ExecuteScalar() as byte[]
                    ?? throw new FlowStoreException(path, FlowStoreProblem.Corrupt, $"a flow names certificate {Convert.ToHexStringLower(key)}, which is not stored");
                _read[cacheKey] = der;
            }

            chain[i] = der;
        }

        return chain;
    }
}
