using System.Runtime.Versioning;

// The tests assert Unix file modes of the CA key and exports; they target Unix hosts.
[assembly: UnsupportedOSPlatform("windows")]
