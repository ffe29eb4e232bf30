using System.Buffers;
using Interpose.Core.Flows;

namespace Interpose.Store.Tests;

/// <summary><see cref="FlowRecord"/> as a stored format: its first byte names the layout, which a reader checks, and
/// which no JSON text can start with.</summary>
public sealed class FlowRecordTests
{
    [Fact]
    public void A_record_starts_with_its_format_and_reads_back_as_the_flow_it_was()
    {
        foreach (var flow in SqliteFlowStoreTests.Sample())
        {
            var output = new ArrayBufferWriter<byte>();
            FlowRecord.Write(output, flow);

            Assert.Equal(FlowRecord.Format, output.WrittenSpan[0]);
            Assert.True(FlowRecord.IsRecord(output.WrittenSpan));
            var read = FlowRecord.Read(output.WrittenSpan);
            Assert.Equal(MemoryFlowStoreTests.Json(Stripped(flow)), MemoryFlowStoreTests.Json(read));
        }
    }

    [Fact]
    public void A_record_of_another_format_or_cut_short_is_refused_not_misread()
    {
        var output = new ArrayBufferWriter<byte>();
        FlowRecord.Write(output, SqliteFlowStoreTests.Sample()[0]);
        var record = output.WrittenSpan.ToArray();

        var later = (byte[])record.Clone();
        later[0] = FlowRecord.Format + 1;
        Assert.Contains("format", Assert.Throws<InvalidDataException>(() => FlowRecord.Read(later)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => FlowRecord.Read(record.AsSpan(0, record.Length / 2)));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("\u00e9")] // two UTF-8 bytes
    [InlineData("\u20ac")] // three
    [InlineData("\U0001F600")] // four, from two UTF-16 units
    public void Strings_of_every_length_around_the_length_prefix_steps_read_back_as_written(string unit)
    {
        // The prefix of a string's length takes one byte up to 62 bytes and two up to 8,190: lengths on both sides of
        // each step, and texts whose encoded length is far below the most it could be.
        foreach (var count in new[] { 0, 1, 20, 21, 31, 32, 62, 63, 64, 200, 4095, 4096, 5000 })
        {
            var text = string.Concat(Enumerable.Repeat(unit, count));
            var flow = (HttpFlow)SqliteFlowStoreTests.Sample()[0];
            flow = flow with { Comment = text, Request = flow.Request with { Path = "/" + text } };
            var output = new ArrayBufferWriter<byte>();
            FlowRecord.Write(output, flow);

            var read = (HttpFlow)FlowRecord.Read(output.WrittenSpan);
            Assert.Equal(text, read.Comment);
            Assert.Equal("/" + text, read.Request.Path);
        }
    }

    [Theory]
    [InlineData("{\"id\":1}")]
    [InlineData(" {}")]
    [InlineData("\t{}")]
    [InlineData("\r\n{}")]
    public void The_JSON_of_files_before_records_is_never_taken_for_a_record(string json)
    {
        Assert.False(FlowRecord.IsRecord(System.Text.Encoding.UTF8.GetBytes(json)));
    }

    /// <summary>What a record keeps: no body bytes (length and hash kept), no certificates.</summary>
    private static Flow Stripped(Flow flow) => flow is HttpFlow http
        ? http with
        {
            Request = http.Request with { Body = http.Request.Body.WithoutContent() },
            Response = http.Response is null ? null : http.Response with { Body = http.Response.Body.WithoutContent() },
            ClientTls = http.ClientTls is null ? null : http.ClientTls with { CertificateChain = [] },
            ServerTls = http.ServerTls is null ? null : http.ServerTls with { CertificateChain = [] },
        }
        : flow;
}
