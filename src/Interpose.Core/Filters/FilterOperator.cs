namespace Interpose.Core.Filters;

/// <summary>The <c>~</c> operators of the filter language (mitmproxy's codes in brackets).</summary>
public enum FilterOperator
{
    /// <summary><c>~all</c>: every flow.</summary>
    All,

    /// <summary><c>~a</c>: the response is an asset (JavaScript, CSS, image, font).</summary>
    Asset,

    /// <summary><c>~e</c>: the flow has an error.</summary>
    Error,

    /// <summary><c>~http</c>: an HTTP flow (WebSocket flows included).</summary>
    Http,

    /// <summary><c>~websocket</c>: an HTTP flow that carries a WebSocket.</summary>
    WebSocket,

    /// <summary><c>~tcp</c>: a raw TCP flow.</summary>
    Tcp,

    /// <summary><c>~udp</c>: a UDP flow.</summary>
    Udp,

    /// <summary><c>~dns</c>: a DNS flow.</summary>
    Dns,

    /// <summary><c>~q</c>: a request with no response (yet).</summary>
    Request,

    /// <summary><c>~s</c>: the flow has a response.</summary>
    Response,

    /// <summary><c>~marked</c>: the flow is marked.</summary>
    Marked,

    /// <summary><c>~replay</c>: the flow was replayed (either side).</summary>
    Replay,

    /// <summary><c>~replayq</c>: the request was replayed (client replay).</summary>
    ReplayRequest,

    /// <summary><c>~replays</c>: the response was replayed (server replay).</summary>
    ReplayResponse,

    /// <summary><c>~b regex</c>: request body, response body or messages.</summary>
    Body,

    /// <summary><c>~bq regex</c>: request body or client messages.</summary>
    RequestBody,

    /// <summary><c>~bs regex</c>: response body or server messages.</summary>
    ResponseBody,

    /// <summary><c>~h regex</c>: request or response header block.</summary>
    Header,

    /// <summary><c>~hq regex</c>: request header block.</summary>
    RequestHeader,

    /// <summary><c>~hs regex</c>: response header block.</summary>
    ResponseHeader,

    /// <summary><c>~t regex</c>: request Content-Type, else response Content-Type.</summary>
    ContentType,

    /// <summary><c>~tq regex</c>: request Content-Type.</summary>
    RequestContentType,

    /// <summary><c>~ts regex</c>: response Content-Type.</summary>
    ResponseContentType,

    /// <summary><c>~d regex</c>: request host or the Host header's host.</summary>
    Domain,

    /// <summary><c>~m regex</c>: request method.</summary>
    Method,

    /// <summary><c>~u regex</c> (or a bare value): the URL.</summary>
    Url,

    /// <summary><c>~src regex</c>: the client address as <c>ip:port</c>.</summary>
    Source,

    /// <summary><c>~dst regex</c>: the server address as <c>host:port</c>.</summary>
    Destination,

    /// <summary><c>~marker regex</c>: the marker text.</summary>
    Marker,

    /// <summary><c>~comment regex</c>: the flow's comment.</summary>
    Comment,

    /// <summary><c>~c int</c>: the response status code equals.</summary>
    StatusCode,
}
