using Interpose.Fuzz;
using SharpFuzz;

// interpose-fuzz --target NAME              run under libFuzzer (instrumented build; see docs/security.md)
// interpose-fuzz --target NAME --afl        run under AFL (SharpFuzz out-of-process)
// interpose-fuzz --replay DIR               run every file of DIR/<target>/ through its target; exit 1 on a crash
// interpose-fuzz --mutate DIR N [SEED]      built-in mutation smoke fuzzing, N inputs per target; crashes saved in DIR
if (args is ["--mutate", var corpus, var count, ..] && int.TryParse(count, out var iterations))
{
    var seed = args.Length > 3 && int.TryParse(args[3], out var s) ? s : Environment.TickCount;
    Console.WriteLine($"seed {seed}");
    return Mutator.Run(corpus, iterations, seed, Console.Out) == 0 ? 0 : 1;
}

if (args is ["--replay", var directory])
{
    var failures = Replay.Run(directory, Console.Out);
    return failures == 0 ? 0 : 1;
}

if (args is ["--target", var name, ..] && FuzzTargets.All.TryGetValue(name, out var target))
{
    if (args.Contains("--afl"))
    {
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            target(copy.ToArray());
        });
    }
    else
    {
        Fuzzer.LibFuzzer.Run(span => target(span.ToArray()));
    }

    return 0;
}

Console.Error.WriteLine("usage: Interpose.Fuzz --target (" + string.Join('|', FuzzTargets.All.Keys) + ") [--afl] | --replay DIR | --mutate DIR N [SEED]");
return 2;
