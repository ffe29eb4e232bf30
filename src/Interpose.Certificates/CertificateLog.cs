using Microsoft.Extensions.Logging;

namespace Interpose.Certificates;

/// <summary>Source-generated log messages of the certificates component. Event ids 1000-1099 are stable: never reuse one.</summary>
internal static partial class CertificateLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Created CA {Subject} with SHA-256 fingerprint {Fingerprint} at {Path}")]
    public static partial void CaCreated(ILogger logger, string subject, string fingerprint, string path);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Loaded CA {Subject} with SHA-256 fingerprint {Fingerprint} from {Path}")]
    public static partial void CaLoaded(ILogger logger, string subject, string fingerprint, string path);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "Waiting for another process creating the CA in {Directory}")]
    public static partial void CaLockBusy(ILogger logger, string directory);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Forged leaf certificate for {Host} with SHA-256 fingerprint {Fingerprint}, valid until {NotAfter:O}")]
    public static partial void LeafForged(ILogger logger, string host, string fingerprint, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Could not forge a leaf certificate for {Host}")]
    public static partial void LeafForgeFailed(ILogger logger, string host, Exception exception);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Debug, Message = "Leaf certificate for {Host} expires {NotAfter:O}; forging a fresh one")]
    public static partial void LeafRefreshing(ILogger logger, string host, DateTimeOffset notAfter);
}
