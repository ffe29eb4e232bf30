using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>The command's own log messages (the library's are in ProxyLog and CertificateLog).</summary>
internal static partial class CliLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "TLS cipher suites from the OpenSSL configuration {Path} (OPENSSL_CONF)")]
    public static partial void TlsPolicyFromOpenSsl(ILogger logger, string path);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Debug, Message = "GC gen0 budget capped at {Bytes} bytes (System.GC.Gen0MaxBudget)")]
    public static partial void Gen0BudgetCap(ILogger logger, object bytes);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "Thread-pool spin limit {Limit} (System.Threading.ThreadPool.UnfairSemaphoreSpinLimit): idle workers sleep without spinning")]
    public static partial void ThreadPoolSpinLimit(ILogger logger, object limit);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "The CA {Subject} expires on {Date}, in {Days} days: after that every intercepted connection fails; make a new one and have clients trust it before then")]
    public static partial void CaExpiresSoon(ILogger logger, string subject, string date, int days);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Server replay: {Count} recorded responses loaded from {Source}")]
    public static partial void ServerReplayLoaded(ILogger logger, int count, string[] source);
}
