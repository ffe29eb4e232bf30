namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>A fact about Linux-only behaviour (socket options of tcp(7)); skipped, and said so, elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "Linux only: the behaviour under test is a Linux socket option";
        }
    }
}
