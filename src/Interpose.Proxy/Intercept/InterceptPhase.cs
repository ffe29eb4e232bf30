namespace Interpose.Proxy.Intercept;

/// <summary>Where an intercepted exchange is paused.</summary>
public enum InterceptPhase
{
    /// <summary>The request is complete (body buffered) and not sent to the origin yet.</summary>
    Request,

    /// <summary>The response is complete (body buffered) and not returned to the client yet.</summary>
    Response,
}
