using Interpose.Core.Tests.Corpus;
using Interpose.Fuzz;

namespace Interpose.Core.Tests;

/// <summary>
/// The fuzz targets as regression tests: the seed corpus (and every crash input saved into it), the shared HTTP
/// corpus, and a short deterministic mutation run must all end in a result or a protocol rejection, never a crash.
/// </summary>
public sealed class FuzzReplayTests
{
    [Fact]
    public void Seed_corpus_replays_without_a_crash()
    {
        using var log = new StringWriter();

        var failures = Replay.Run(CorpusDirectory(), log);

        Assert.True(failures == 0, log.ToString());
        Assert.DoesNotContain(" 0 inputs", log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Shared_http_corpus_goes_through_the_targets_without_a_crash()
    {
        foreach (var (_, raw, _) in HttpCorpus.ValidRequests)
        {
            FuzzTargets.RequestHead(HttpCorpus.Bytes(raw));
        }

        foreach (var (raw, _) in HttpCorpus.InvalidRequests)
        {
            FuzzTargets.RequestHead(HttpCorpus.Bytes(raw));
        }

        foreach (var (raw, _) in HttpCorpus.InvalidResponses)
        {
            FuzzTargets.ResponseHead(HttpCorpus.Bytes(raw));
        }
    }

    [Fact]
    public void Short_mutation_run_finds_no_crash()
    {
        // A copy, so that a crash input found here is reported rather than written into the repository.
        var work = Directory.CreateTempSubdirectory("interpose-fuzz-").FullName;
        try
        {
            foreach (var folder in Directory.GetDirectories(CorpusDirectory()))
            {
                var target = Directory.CreateDirectory(Path.Combine(work, Path.GetFileName(folder))).FullName;
                foreach (var file in Directory.GetFiles(folder))
                {
                    File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
                }
            }

            using var log = new StringWriter();
            Assert.True(Mutator.Run(work, iterations: 20_000, seed: 20261124, log) == 0, log.ToString());
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string CorpusDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Interpose.slnx")))
            {
                return Path.Combine(dir.FullName, "fuzz", "corpus");
            }
        }

        throw new DirectoryNotFoundException("Interpose.slnx not found above " + AppContext.BaseDirectory);
    }
}
