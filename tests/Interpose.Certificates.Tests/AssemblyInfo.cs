using System.Runtime.Versioning;

// The tests assert Unix file modes (0600 keys, 0700 directory) and run the real openssl; they target Unix hosts.
[assembly: UnsupportedOSPlatform("windows")]
