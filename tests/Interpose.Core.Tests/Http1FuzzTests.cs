using Interpose.Core.Tests.Corpus;

namespace Interpose.Core.Tests;

/// <summary>Mutated valid messages must either parse or fail with <see cref="HttpProtocolException"/>, never anything else.</summary>
public class Http1FuzzTests
{
    private static readonly byte[] Interesting = "\r\n :;\t\0,0123456789abcdefABCDEF-+xX\u007f\u00ff"u8.ToArray();

    [Fact]
    public void Mutated_requests_parse_or_reject_cleanly()
    {
        var random = new Random(9112);
        int rejected = 0;
        for (int i = 0; i < 4000; i++)
        {
            (_, string raw, _) = HttpCorpus.ValidRequests[random.Next(HttpCorpus.ValidRequests.Count)];
            byte[] mutated = Mutate(HttpCorpus.Bytes(raw), random);
            rejected += Run(() => Http1MessageDriver.ParseRequest(RandomChunks(mutated, random), resumeScan: random.Next(2) == 0));
        }

        Assert.InRange(rejected, 1, 3999);
    }

    [Fact]
    public void Mutated_responses_parse_or_reject_cleanly()
    {
        var random = new Random(9110);
        int rejected = 0;
        for (int i = 0; i < 4000; i++)
        {
            (_, string raw, _) = HttpCorpus.ValidResponses[random.Next(HttpCorpus.ValidResponses.Count)];
            byte[] mutated = Mutate(HttpCorpus.Bytes(raw), random);
            rejected += Run(() => Http1MessageDriver.ParseResponse(RandomChunks(mutated, random), resumeScan: random.Next(2) == 0));
        }

        Assert.InRange(rejected, 1, 3999);
    }

    private static int Run(Action parse)
    {
        try
        {
            parse();
            return 0;
        }
        catch (HttpProtocolException)
        {
            return 1;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("The parser asked for more", StringComparison.Ordinal))
        {
            // A mutation made the message longer than the bytes sent (e.g. a bigger Content-Length): legitimately incomplete.
            return 0;
        }
    }

    private static byte[] Mutate(byte[] input, Random random)
    {
        var bytes = new List<byte>(input);
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            byte b = random.Next(3) == 0 ? (byte)random.Next(256) : Interesting[random.Next(Interesting.Length)];
            switch (random.Next(3))
            {
                case 0:
                    bytes[at] = b;
                    break;
                case 1:
                    bytes.Insert(at, b);
                    break;
                default:
                    bytes.RemoveAt(at);
                    break;
            }
        }

        return [.. bytes];
    }

    private static List<byte[]> RandomChunks(byte[] bytes, Random random)
    {
        var chunks = new List<byte[]>();
        int i = 0;
        while (i < bytes.Length)
        {
            int n = Math.Min(bytes.Length - i, random.Next(1, 16));
            chunks.Add(bytes[i..(i + n)]);
            i += n;
        }

        return chunks;
    }
}
