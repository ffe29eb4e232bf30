using Interpose.Core.Tests.Corpus;

namespace Interpose.Core.Tests;

/// <summary>Property: whatever the byte boundaries, a valid message parses to the same head, body and trailers.</summary>
public class SplitPointTests
{
    public static TheoryData<string> Requests => HttpCorpus.Names(HttpCorpus.ValidRequests);

    public static TheoryData<string> Responses => HttpCorpus.Names(HttpCorpus.ValidResponses);

    [Theory]
    [MemberData(nameof(Requests))]
    public void Request_parses_the_same_at_every_split_point(string name)
    {
        byte[] message = HttpCorpus.Bytes(Find(HttpCorpus.ValidRequests, name));
        Http1MessageDriver.Result whole = Http1MessageDriver.ParseRequest([message]);
        for (int split = 1; split < message.Length; split++)
        {
            Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.Split(message, split)));
        }

        for (int split = 1; split + 3 < message.Length; split += 3)
        {
            Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.Split(message, split, split + 2)));
        }

        Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.OneByteAtATime(message)));
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public void Request_parses_the_same_when_the_scan_resumes_at_every_split_point(string name)
    {
        byte[] message = HttpCorpus.Bytes(Find(HttpCorpus.ValidRequests, name));
        Http1MessageDriver.Result whole = Http1MessageDriver.ParseRequest([message]);
        for (int split = 1; split < message.Length; split++)
        {
            Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.Split(message, split), resumeScan: true));
        }

        Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.OneByteAtATime(message), resumeScan: true));
    }

    [Theory]
    [MemberData(nameof(Responses))]
    public void Response_parses_the_same_when_the_scan_resumes(string name)
    {
        byte[] message = HttpCorpus.Bytes(Find(HttpCorpus.ValidResponses, name));
        Http1MessageDriver.Result whole = Http1MessageDriver.ParseResponse([message]);
        for (int split = 1; split < message.Length; split++)
        {
            Assert.Equal(whole, Http1MessageDriver.ParseResponse(Http1MessageDriver.Split(message, split), resumeScan: true));
        }

        Assert.Equal(whole, Http1MessageDriver.ParseResponse(Http1MessageDriver.OneByteAtATime(message), resumeScan: true));
    }

    [Theory]
    [MemberData(nameof(Responses))]
    public void Response_parses_the_same_at_every_split_point(string name)
    {
        byte[] message = HttpCorpus.Bytes(Find(HttpCorpus.ValidResponses, name));
        Http1MessageDriver.Result whole = Http1MessageDriver.ParseResponse([message]);
        for (int split = 1; split < message.Length; split++)
        {
            Assert.Equal(whole, Http1MessageDriver.ParseResponse(Http1MessageDriver.Split(message, split)));
        }

        Assert.Equal(whole, Http1MessageDriver.ParseResponse(Http1MessageDriver.OneByteAtATime(message)));
    }

    [Fact]
    public void Trailers_survive_every_split_point()
    {
        byte[] message = HttpCorpus.Bytes(Find(HttpCorpus.ValidRequests, "chunked with trailers"));
        Http1MessageDriver.Result whole = Http1MessageDriver.ParseRequest([message]);
        Assert.Equal("X-Sum=45\nX-Other=yes\n", whole.Trailers);
        Assert.Equal("0123456789", whole.Body);
        Assert.Equal(whole, Http1MessageDriver.ParseRequest(Http1MessageDriver.OneByteAtATime(message)));
    }

    private static string Find(IReadOnlyList<(string Name, string Raw, string Body)> list, string name)
    {
        foreach ((string n, string raw, _) in list)
        {
            if (n == name)
            {
                return raw;
            }
        }

        throw new ArgumentException(name);
    }
}
