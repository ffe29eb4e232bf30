// ImplicitUsings brings System.Net.Http, which has its own HttpProtocolException (HTTP/2-3 error codes); ours wins here.
global using HttpProtocolException = Interpose.Core.Http.HttpProtocolException;
