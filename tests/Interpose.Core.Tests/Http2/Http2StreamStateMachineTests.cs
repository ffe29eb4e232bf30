using Interpose.Core.Http2;

namespace Interpose.Core.Tests.Http2;

/// <summary>The RFC 9113 §5.1 transition table, row by row.</summary>
public class Http2StreamStateMachineTests
{
    private const string Ok = "ok";
    private const string Ignore = "ignore";

    // Events: "send H", "send H+ES", "send D", "send D+ES", "send R", "recv H", "recv H+ES", "recv D", "recv D+ES",
    // "recv R", "recv W", "recv P".
    private static Http2StreamStateMachine Reach(string path)
    {
        var machine = new Http2StreamStateMachine(1);
        foreach (string step in path.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Apply(machine, step);
        }

        return machine;
    }

    private static bool Apply(Http2StreamStateMachine machine, string step)
    {
        string[] parts = step.Split(' ');
        bool endStream = parts[1].EndsWith("+ES", StringComparison.Ordinal);
        FrameType type = parts[1][0] switch
        {
            'H' => FrameType.Headers,
            'D' => FrameType.Data,
            'R' => FrameType.RstStream,
            'W' => FrameType.WindowUpdate,
            'P' => FrameType.Priority,
            _ => throw new ArgumentException(step),
        };
        if (parts[0] == "send")
        {
            machine.OnSend(type, endStream);
            return true;
        }

        return machine.OnReceive(type, endStream);
    }

    // (path to the state, event, expected outcome, expected state afterwards)
    // Outcome: ok / ignore / conn:CODE / stream:CODE / bug (InvalidOperationException on a send).
    public static TheoryData<string, string, string, Http2StreamState> Transitions => new()
    {
        // idle
        { "", "recv H", Ok, Http2StreamState.Open },
        { "", "recv H+ES", Ok, Http2StreamState.HalfClosedRemote },
        { "", "recv D", "conn:ProtocolError", Http2StreamState.Idle },
        { "", "recv R", "conn:ProtocolError", Http2StreamState.Idle },
        { "", "recv W", "conn:ProtocolError", Http2StreamState.Idle },
        { "", "recv P", Ignore, Http2StreamState.Idle },
        { "", "send H", Ok, Http2StreamState.Open },
        { "", "send H+ES", Ok, Http2StreamState.HalfClosedLocal },
        { "", "send D", "bug", Http2StreamState.Idle },
        { "", "send R", "bug", Http2StreamState.Idle },

        // open
        { "recv H", "recv D", Ok, Http2StreamState.Open },
        { "recv H", "recv D+ES", Ok, Http2StreamState.HalfClosedRemote },
        { "recv H", "recv H+ES", Ok, Http2StreamState.HalfClosedRemote },
        { "recv H", "recv R", Ok, Http2StreamState.Closed },
        { "recv H", "recv W", Ok, Http2StreamState.Open },
        { "recv H", "send D+ES", Ok, Http2StreamState.HalfClosedLocal },
        { "recv H", "send R", Ok, Http2StreamState.Closed },

        // half-closed (remote): the peer finished
        { "recv H+ES", "recv D", "stream:StreamClosed", Http2StreamState.HalfClosedRemote },
        { "recv H+ES", "recv H", "stream:StreamClosed", Http2StreamState.HalfClosedRemote },
        { "recv H+ES", "recv W", Ok, Http2StreamState.HalfClosedRemote },
        { "recv H+ES", "recv P", Ignore, Http2StreamState.HalfClosedRemote },
        { "recv H+ES", "recv R", Ok, Http2StreamState.Closed },
        { "recv H+ES", "send H", Ok, Http2StreamState.HalfClosedRemote },
        { "recv H+ES", "send D+ES", Ok, Http2StreamState.Closed },

        // half-closed (local): we finished
        { "send H+ES", "recv H", Ok, Http2StreamState.HalfClosedLocal },
        { "send H+ES", "recv D+ES", Ok, Http2StreamState.Closed },
        { "send H+ES", "recv R", Ok, Http2StreamState.Closed },
        { "send H+ES", "send D", "bug", Http2StreamState.HalfClosedLocal },
        { "send H+ES", "send W", Ok, Http2StreamState.HalfClosedLocal },
        { "send H+ES", "send R", Ok, Http2StreamState.Closed },

        // closed by END_STREAM both ways: late WINDOW_UPDATE/RST ignored, DATA/HEADERS a connection error
        { "recv H+ES, send H+ES", "recv W", Ignore, Http2StreamState.Closed },
        { "recv H+ES, send H+ES", "recv R", Ignore, Http2StreamState.Closed },
        { "recv H+ES, send H+ES", "recv P", Ignore, Http2StreamState.Closed },
        { "recv H+ES, send H+ES", "recv D", "conn:StreamClosed", Http2StreamState.Closed },
        { "recv H+ES, send H+ES", "send D", "bug", Http2StreamState.Closed },

        // closed by our RST_STREAM: everything ignored (the peer may not have seen it yet)
        { "recv H, send R", "recv D", Ignore, Http2StreamState.Closed },
        { "recv H, send R", "recv H", Ignore, Http2StreamState.Closed },
        { "recv H, send R", "recv W", Ignore, Http2StreamState.Closed },
        { "recv H, send R", "send R", "bug", Http2StreamState.Closed },

        // closed by the peer's RST_STREAM: anything but PRIORITY is a stream error STREAM_CLOSED
        { "recv H, recv R", "recv D", "stream:StreamClosed", Http2StreamState.Closed },
        { "recv H, recv R", "recv W", "stream:StreamClosed", Http2StreamState.Closed },
        { "recv H, recv R", "recv P", Ignore, Http2StreamState.Closed },
    };

    [Theory]
    [MemberData(nameof(Transitions))]
    public void Transition(string path, string step, string outcome, Http2StreamState after)
    {
        Http2StreamStateMachine machine = Reach(path);
        switch (outcome)
        {
            case Ok:
                Assert.True(Apply(machine, step));
                break;
            case Ignore:
                Assert.False(Apply(machine, step));
                break;
            case "bug":
                Assert.Throws<InvalidOperationException>(() => Apply(machine, step));
                break;
            default:
                {
                    string[] parts = outcome.Split(':');
                    var code = Enum.Parse<Http2ErrorCode>(parts[1]);
                    if (parts[0] == "conn")
                    {
                        Assert.Equal(code, Assert.Throws<Http2ConnectionException>(() => Apply(machine, step)).ErrorCode);
                    }
                    else
                    {
                        var e = Assert.Throws<Http2StreamException>(() => Apply(machine, step));
                        Assert.Equal((1, code), (e.StreamId, e.ErrorCode));
                    }

                    break;
                }
        }

        Assert.Equal(after, machine.State);
    }

    [Fact]
    public void Close_reason_records_how_the_stream_ended()
    {
        Assert.Equal(Http2StreamCloseReason.EndStream, Reach("recv H+ES, send D+ES").CloseReason);
        Assert.Equal(Http2StreamCloseReason.ResetSent, Reach("recv H, send R").CloseReason);
        Assert.Equal(Http2StreamCloseReason.ResetReceived, Reach("send H, recv R").CloseReason);
        Assert.Equal(Http2StreamCloseReason.None, Reach("recv H").CloseReason);
        Assert.True(Reach("recv H").CanSend);
        Assert.False(Reach("send H+ES").CanSend);
        Assert.True(Reach("send H+ES").CanReceive);
    }
}
