// read-headers.cs: reads every request's and response's header fields and changes nothing: the cost of a script
// that looks at each exchange (bench/load, docs/performance.md#scripts).
// Run:  interpose run -s samples/scripts/read-headers.cs
public sealed class ReadHeaders : ProxyAddon
{
    private long _fieldBytes;

    /// <summary>Bytes of header names and values seen so far (so that reading them is not optimized away).</summary>
    public long FieldBytes => Interlocked.Read(ref _fieldBytes);

    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        Count(exchange.Request.Headers);
        return ValueTask.CompletedTask;
    }

    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        Count(exchange.Response!.Headers);
        return ValueTask.CompletedTask;
    }

    private void Count(HttpHeaders headers)
    {
        long bytes = 0;
        foreach (var field in headers)
        {
            bytes += field.Name.Length + field.Value.Length;
        }

        Interlocked.Add(ref _fieldBytes, bytes);
    }
}
