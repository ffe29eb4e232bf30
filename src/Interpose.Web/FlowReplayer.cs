using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Web;

/// <summary>
/// Replays a request the way a client would: through the running proxy's own listener, so the proxy records it as a
/// new flow and every addon (rules, intercept) applies to it as to any other request.
/// </summary>
internal sealed class FlowReplayer(Uri proxy, X509Certificate2 authority) : IDisposable
{
    /// <summary>How long a replay waits for its response: the proxy's own response-head timeout (60 s,
    /// ProxyTimeouts.DefaultResponseHead) plus slack, so the proxy's answer (a 504) arrives first.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(75);

    private readonly HttpClient _client = new(new SocketsHttpHandler
    {
        Proxy = new WebProxy(proxy),
        UseProxy = true,
        UseCookies = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        SslOptions = new SslClientAuthenticationOptions
        {
            // HTTPS through the proxy meets the proxy's forged certificates: trust its CA, and only it.
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => certificate is not null && ChainsTo(certificate, authority, errors),
        },
    })
    {
        Timeout = Timeout,
    };

    /// <summary>Sends <paramref name="request"/> and reads the whole response, keeping none of it (the proxy records the
    /// exchange); returns its status, and the failure that cut its body short, if one did.</summary>
    /// <exception cref="HttpRequestException">The proxy could not be reached or failed the request before its response
    /// head.</exception>
    public async Task<(int Status, Exception? BodyError)> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            HttpResponseMessage response;
            try
            {
                // NOTE: ResponseContentRead would buffer the whole body in this process (a 400 MB download raised the
                // RSS by 480 MB, and one over 2 GiB failed): the body is read to the end and dropped instead.
                response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new HttpRequestException("the replay got no response within " + Timeout.TotalSeconds + " s", ex);
            }

            using (response)
            {
                try
                {
                    // Read to the end, so the exchange (and its recording) completes as a client's would.
                    await response.Content.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
                    return ((int)response.StatusCode, null);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
                {
                    return ((int)response.StatusCode, ex);
                }
            }
        }
    }

    public void Dispose() => _client.Dispose();

    private static bool ChainsTo(X509Certificate certificate, X509Certificate2 authority, SslPolicyErrors errors)
    {
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
