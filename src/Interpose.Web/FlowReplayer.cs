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

    /// <summary>Sends <paramref name="request"/> and reads the whole response; returns its status.</summary>
    /// <exception cref="HttpRequestException">The proxy could not be reached or failed the request.</exception>
    public async Task<int> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            try
            {
                using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
                return (int)response.StatusCode;
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new HttpRequestException("the replay got no response within " + Timeout.TotalSeconds + " s", ex);
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
