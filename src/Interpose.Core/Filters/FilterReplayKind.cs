namespace Interpose.Core.Filters;

/// <summary>Whether and how a flow was replayed (mitmproxy's <c>is_replay</c>).</summary>
public enum FilterReplayKind
{
    /// <summary>Not replayed.</summary>
    None,

    /// <summary>The request was sent again (client replay): <c>~replayq</c>.</summary>
    Request,

    /// <summary>The response came from a recording (server replay): <c>~replays</c>.</summary>
    Response,
}
