using System.Security.Cryptography;
using System.Text;

namespace Interpose.Fuzz;

/// <summary>
/// A small built-in mutation fuzzer for machines without AFL or libFuzzer: seeds from the corpus, mutated with
/// HTTP- and TLS-aware edits (CR, LF, colon, space, digits, duplicated and truncated ranges). Not coverage-guided, so
/// it is a smoke test next to the real fuzzers, but it runs anywhere and finds shallow crashes in seconds.
/// </summary>
public static class Mutator
{
    private static readonly byte[] Interesting = Encoding.ASCII.GetBytes("\r\n:; \t0F-+,\"\0\u007f\u00ff");

    /// <summary>Runs <paramref name="iterations"/> mutated inputs per target; a crashing input is saved next to the seeds.</summary>
    /// <param name="directory">The corpus root (one folder per target).</param>
    /// <param name="iterations">Inputs per target.</param>
    /// <param name="seed">The pseudo-random seed, so that a run can be repeated.</param>
    /// <param name="log">Where to report crashes and the summary.</param>
    /// <returns>How many crashing inputs were found.</returns>
    public static int Run(string directory, int iterations, int seed, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var random = new Random(seed);
        var crashes = 0;
        foreach (var (name, target) in FuzzTargets.All)
        {
            var folder = Path.Combine(directory, name);
            var seeds = Directory.Exists(folder) ? Directory.GetFiles(folder).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray() : [];
            if (seeds.Length == 0)
            {
                continue;
            }

            for (var i = 0; i < iterations; i++)
            {
                var input = Mutate(seeds[random.Next(seeds.Length)], random);
                try
                {
                    target(input);
                }
#pragma warning disable CA1031 // Any exception escaping a target is a finding.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    crashes++;
                    var file = Path.Combine(folder, "crash-" + Convert.ToHexStringLower(SHA256.HashData(input))[..16]);
                    File.WriteAllBytes(file, input);
                    log.WriteLine($"CRASH {name}: {ex.GetType().Name}: {ex.Message} -> {file}");
                }
            }
        }

        log.WriteLine($"{iterations} mutations per target, {crashes} crashes");
        return crashes;
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var data = new List<byte>(seed);
        var edits = 1 + random.Next(4);
        for (var e = 0; e < edits; e++)
        {
            var at = data.Count == 0 ? 0 : random.Next(data.Count);
            switch (random.Next(6))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    data.Insert(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 2 when data.Count > 0:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(8)));
                    break;
                case 3 when data.Count > 0:
                    var length = Math.Min(data.Count - at, 1 + random.Next(64));
                    data.InsertRange(at, data.GetRange(at, length));
                    break;
                case 4 when data.Count > 0:
                    data.RemoveRange(at, data.Count - at);
                    break;
                default:
                    data.Insert(at, (byte)random.Next(256));
                    break;
            }
        }

        return [.. data];
    }
}
