using System.Buffers;
using Interpose.Core.Http2;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

/// <summary>SETTINGS values, flow-control windows, header block sequencing and the rate budgets.</summary>
public class Http2ConnectionRulesTests
{
    private static Http2Frame Read(byte[] bytes)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame frame));
        return frame;
    }

    [Fact]
    public void Settings_start_at_the_rfc_defaults()
    {
        var s = new Http2Settings();
        Assert.Equal(4096u, s.HeaderTableSize);
        Assert.True(s.EnablePush);
        Assert.Null(s.MaxConcurrentStreams);
        Assert.Equal(65535, s.InitialWindowSize);
        Assert.Equal(16384, s.MaxFrameSize);
        Assert.Null(s.MaxHeaderListSize);
        Assert.False(s.EnableConnectProtocol);
    }

    [Fact]
    public void Settings_frame_applies_in_order_ignores_unknown_ids_and_reports_the_window_delta()
    {
        var s = new Http2Settings();
        Http2Frame frame = Read(Frame(0x4, 0, 0, Hex("0004 00010000 0002 00000000 0003 00000064 0005 00ffffff 0006 00008000 0001 00000000 0008 00000001 00ee 12345678 0004 00008000")));
        int delta = s.Apply(frame);
        Assert.Equal(32768 - 65535, delta);
        Assert.Equal(32768, s.InitialWindowSize);
        Assert.False(s.EnablePush);
        Assert.Equal(100u, s.MaxConcurrentStreams);
        Assert.Equal(16_777_215, s.MaxFrameSize);
        Assert.Equal(32768u, s.MaxHeaderListSize);
        Assert.Equal(0u, s.HeaderTableSize);
        Assert.True(s.EnableConnectProtocol);
        Assert.Equal(0, s.Apply(Read(Frame(0x4, 1, 0, [])))); // ACK: nothing
    }

    [Theory]
    [InlineData(SettingsParameter.EnablePush, 2u, Http2ErrorCode.ProtocolError)]
    [InlineData(SettingsParameter.EnableConnectProtocol, 2u, Http2ErrorCode.ProtocolError)]
    [InlineData(SettingsParameter.InitialWindowSize, 0x8000_0000u, Http2ErrorCode.FlowControlError)]
    [InlineData(SettingsParameter.MaxFrameSize, 16383u, Http2ErrorCode.ProtocolError)]
    [InlineData(SettingsParameter.MaxFrameSize, 16_777_216u, Http2ErrorCode.ProtocolError)]
    public void Invalid_setting_values_are_connection_errors(SettingsParameter parameter, uint value, Http2ErrorCode code)
    {
        var s = new Http2Settings();
        Assert.Equal(code, Assert.Throws<Http2ConnectionException>(() => s.Apply(new Http2Setting(parameter, value))).ErrorCode);
    }

    [Theory]
    [InlineData(SettingsParameter.EnablePush, 1u)]
    [InlineData(SettingsParameter.InitialWindowSize, 0x7FFF_FFFFu)]
    [InlineData(SettingsParameter.MaxFrameSize, 16384u)]
    [InlineData(SettingsParameter.MaxFrameSize, 16_777_215u)]
    [InlineData(SettingsParameter.HeaderTableSize, uint.MaxValue)]
    [InlineData((SettingsParameter)0x99, uint.MaxValue)]
    public void Boundary_setting_values_are_accepted(SettingsParameter parameter, uint value)
    {
        new Http2Settings().Apply(new Http2Setting(parameter, value));
    }

    [Fact]
    public void Window_update_overflow_is_a_flow_control_error_of_the_right_kind()
    {
        // RFC 9113 §6.9.1: above 2^31-1 → FLOW_CONTROL_ERROR; stream → RST_STREAM, connection → GOAWAY.
        var stream = new FlowWindow(3, 65535);
        stream.Increase(int.MaxValue - 65535);
        Assert.Equal(int.MaxValue, stream.Size);
        var se = Assert.Throws<Http2StreamException>(() => stream.Increase(1));
        Assert.Equal((3, Http2ErrorCode.FlowControlError), (se.StreamId, se.ErrorCode));
        Assert.Equal(int.MaxValue, stream.Size);

        var connection = new FlowWindow(0, int.MaxValue);
        Assert.Equal(Http2ErrorCode.FlowControlError, Assert.Throws<Http2ConnectionException>(() => connection.Increase(1)).ErrorCode);
    }

    [Fact]
    public void Window_increment_of_zero_is_a_protocol_error_of_the_right_kind()
    {
        Assert.Equal(Http2ErrorCode.ProtocolError, Assert.Throws<Http2StreamException>(() => new FlowWindow(1, 10).Increase(0)).ErrorCode);
        Assert.Equal(Http2ErrorCode.ProtocolError, Assert.Throws<Http2ConnectionException>(() => new FlowWindow(0, 10).Increase(0)).ErrorCode);
    }

    [Fact]
    public void Receiving_more_than_the_window_is_a_flow_control_error()
    {
        var stream = new FlowWindow(5, 100);
        stream.Consume(60);
        stream.Consume(40);
        Assert.Equal(0, stream.Size);
        Assert.Equal(Http2ErrorCode.FlowControlError, Assert.Throws<Http2StreamException>(() => stream.Consume(1)).ErrorCode);
        Assert.Equal(Http2ErrorCode.FlowControlError, Assert.Throws<Http2ConnectionException>(() => new FlowWindow(0, 10).Consume(11)).ErrorCode);
    }

    [Fact]
    public void Send_credit_is_taken_up_to_the_window()
    {
        var window = new FlowWindow(1, 100);
        Assert.Equal(70, window.Take(70));
        Assert.Equal(30, window.Take(70));
        Assert.Equal(0, window.Take(70));
        window.Increase(5);
        Assert.Equal(5, window.Take(70));
    }

    [Fact]
    public void Initial_window_change_can_go_negative_but_not_overflow()
    {
        // RFC 9113 §6.9.2: a smaller SETTINGS_INITIAL_WINDOW_SIZE can make a window negative; nothing may be sent until
        // WINDOW_UPDATEs bring it back above 0. Overflow is a connection error.
        var window = new FlowWindow(1, 65535);
        window.Take(60000);
        window.ApplyInitialWindowSizeDelta(16384 - 65535);
        Assert.Equal(5535 - 49151, window.Size);
        Assert.Equal(0, window.Take(100));
        window.Increase(43616);
        Assert.Equal(0, window.Size);

        var full = new FlowWindow(1, int.MaxValue - 10);
        Assert.Equal(Http2ErrorCode.FlowControlError, Assert.Throws<Http2ConnectionException>(() => full.ApplyInitialWindowSizeDelta(11)).ErrorCode);
        Assert.Throws<InvalidOperationException>(() => new FlowWindow(0, 1).ApplyInitialWindowSizeDelta(1));
    }

    [Fact]
    public void Header_block_tracker_accepts_a_block_in_pieces()
    {
        var tracker = new Http2HeaderBlockTracker();
        Assert.False(tracker.OnFrame(Read(Frame(0x1, 0x0, 1, Hex("82")))));
        Assert.True(tracker.IsOpen);
        Assert.False(tracker.OnFrame(Read(Frame(0x9, 0x0, 1, Hex("86")))));
        Assert.True(tracker.OnFrame(Read(Frame(0x9, 0x4, 1, Hex("84")))));
        Assert.False(tracker.IsOpen);
        Assert.False(tracker.OnFrame(Read(Frame(0x0, 0x1, 1, Hex("00")))));
        Assert.True(tracker.OnFrame(Read(Frame(0x1, 0x4, 3, Hex("82")))));
    }

    public static TheoryData<string, byte[]> Interleaved => new()
    {
        { "DATA inside a block", Frame(0x0, 0x0, 1, []) },
        { "PING inside a block", Frame(0x6, 0x0, 0, new byte[8]) },
        { "CONTINUATION of another stream", Frame(0x9, 0x4, 3, Hex("82")) },
        { "HEADERS of another stream", Frame(0x1, 0x4, 3, Hex("82")) },
        { "unknown type inside a block", Frame(0x42, 0x0, 1, []) },
    };

    [Theory]
    [MemberData(nameof(Interleaved))]
    public void Frames_interleaved_in_a_block_are_protocol_errors(string name, byte[] frame)
    {
        _ = name;
        var tracker = new Http2HeaderBlockTracker();
        tracker.OnFrame(Read(Frame(0x1, 0x0, 1, Hex("82"))));
        Assert.Equal(Http2ErrorCode.ProtocolError, Assert.Throws<Http2ConnectionException>(() => tracker.OnFrame(Read(frame))).ErrorCode);
    }

    [Fact]
    public void Continuation_without_an_open_block_is_a_protocol_error()
    {
        var tracker = new Http2HeaderBlockTracker();
        Assert.Throws<Http2ConnectionException>(() => tracker.OnFrame(Read(Frame(0x9, 0x4, 1, Hex("82")))));
        tracker.OnFrame(Read(Frame(0x1, 0x4, 1, Hex("82"))));
        Assert.Throws<Http2ConnectionException>(() => tracker.OnFrame(Read(Frame(0x9, 0x4, 1, Hex("82")))));
    }

    [Fact]
    public void Continuation_flood_is_cut_by_frame_count_even_with_empty_frames()
    {
        // CVE-2024-27316 and relatives: endless CONTINUATION frames, here empty ones that add no octets.
        var tracker = new Http2HeaderBlockTracker(maxFieldBlockSize: 64 * 1024, maxContinuationFrames: 32);
        tracker.OnFrame(Read(Frame(0x1, 0x0, 1, Hex("82"))));
        for (int i = 0; i < 32; i++)
        {
            Assert.False(tracker.OnFrame(Read(Frame(0x9, 0x0, 1, []))));
        }

        Assert.Equal(Http2ErrorCode.ProtocolError, Assert.Throws<Http2ConnectionException>(() => tracker.OnFrame(Read(Frame(0x9, 0x0, 1, [])))).ErrorCode);
    }

    [Fact]
    public void Continuation_flood_is_cut_by_encoded_size()
    {
        var tracker = new Http2HeaderBlockTracker(maxFieldBlockSize: 40000, maxContinuationFrames: 32);
        tracker.OnFrame(Read(Frame(0x1, 0x0, 1, new byte[16384])));
        tracker.OnFrame(Read(Frame(0x9, 0x0, 1, new byte[16384])));
        Assert.Throws<Http2ConnectionException>(() => tracker.OnFrame(Read(Frame(0x9, 0x4, 1, new byte[7233]))));

        tracker = new Http2HeaderBlockTracker(maxFieldBlockSize: 40000, maxContinuationFrames: 32);
        tracker.OnFrame(Read(Frame(0x1, 0x0, 1, new byte[16384])));
        tracker.OnFrame(Read(Frame(0x9, 0x0, 1, new byte[16384])));
        Assert.True(tracker.OnFrame(Read(Frame(0x9, 0x4, 1, new byte[7232]))));
    }

    [Fact]
    public void Rate_budget_allows_the_budget_per_window_then_refuses_and_resets_with_the_window()
    {
        var budget = new RateBudget(Http2Limits.ResetBudgetPerWindow, Http2Limits.ResetBudgetWindow);
        var t = TimeSpan.FromSeconds(100);
        for (int i = 0; i < 100; i++)
        {
            Assert.True(budget.TryRecord(t + TimeSpan.FromMilliseconds(i)));
        }

        Assert.False(budget.TryRecord(t + TimeSpan.FromSeconds(4.9)));
        Assert.True(budget.TryRecord(t + TimeSpan.FromSeconds(5)));
        Assert.Equal(1, budget.Count);
    }

    [Fact]
    public void Limits_have_the_documented_defaults()
    {
        Assert.Equal(100, Http2Limits.MaxConcurrentStreams);
        Assert.Equal(32 * 1024, Http2Limits.MaxHeaderListSize);
        Assert.Equal(64 * 1024, Http2Limits.MaxFieldBlockSize);
        Assert.Equal(32, Http2Limits.MaxContinuationFrames);
        Assert.Equal(100, Http2Limits.ResetBudgetPerWindow);
        Assert.Equal(TimeSpan.FromSeconds(5), Http2Limits.ResetBudgetWindow);
        Assert.Equal(16384, Http2Limits.MaxFrameSize);
    }
}
