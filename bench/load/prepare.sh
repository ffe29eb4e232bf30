# Sourced by bench/load/run.sh and bench/soak.sh (from the repository root): installs the benchmark's tools from Debian
# when missing, builds the CLI in Release (BUILD=aot, the default: the native AOT binary in artifacts/aot, exported as
# INTERPOSE_BIN; BUILD=jit: `dotnet interpose.dll`), compiles the lean load client bench/load/leanload.c into
# artifacts/leanload with the system C compiler and OpenSSL, and raises the open-file limit for the idle scenario.
missing=()
command -v hey >/dev/null || missing+=(hey)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v socat >/dev/null || missing+=(socat)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
command -v cc >/dev/null || command -v gcc >/dev/null || command -v clang >/dev/null || missing+=(gcc)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
# PEER=squid (bench/load/run.sh): squid 5.7 with ssl-bump, issue 19's peer. Only then: Debian's package also installs
# (and, where services may start, starts) a system squid on port 3128, which no other run needs.
if [ "${PEER:-}" = squid ]; then
  [ -x /usr/sbin/squid ] && [ -x /usr/lib/squid/security_file_certgen ] || missing+=(squid-openssl)
fi
# PEER=haproxy or haproxy-http: HAProxy as a relay in front of nginx, the ceiling (Debian's haproxy; its package sets up
# a system service whose default configuration listens nowhere).
case "${PEER:-}" in
  haproxy|haproxy-http) [ -x /usr/sbin/haproxy ] || missing+=(haproxy) ;;
esac
BUILD=${BUILD:-aot}
case "$BUILD" in
  aot) command -v clang >/dev/null || missing+=(clang zlib1g-dev) ;;
  jit) ;;
  *) echo "BUILD must be aot or jit" >&2; exit 2 ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# The idle scenario holds 5,000 client connections, and the proxy as many of its own plus its origin connections:
# every process started from here (nginx, the proxy, leanload) inherits this limit (20,000, the proxy's 10,000
# connection cap twice over); the hard limit caps it where it is lower.
want_fds=20000
hard_fds=$(ulimit -Hn)
if [ "$hard_fds" != unlimited ] && [ "$hard_fds" -lt "$want_fds" ]; then want_fds=$hard_fds; fi
ulimit -n "$want_fds"

mkdir -p artifacts
cc_bin=$(command -v cc || command -v gcc || command -v clang)
"$cc_bin" -O2 -Wall -Wextra -o artifacts/leanload bench/load/leanload.c -lssl -lcrypto >&2
python3 bench/load/leanload_check.py artifacts/leanload # its HTTP/1.1 framing, before any number relies on it
export LEANLOAD_BIN="$PWD/artifacts/leanload"

if [ "$BUILD" = aot ]; then
  rid=$(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1)
  # PublishAot comes from the project, not the command line: a global -p:PublishAot=true would reach the referenced
  # projects too, and Interpose.Scripting (JIT only: it compiles and loads scripts) fails the AOT analyzers.
  dotnet publish -c Release -r "$rid" src/Interpose.Cli -o artifacts/aot -nologo -v quiet >&2
  export INTERPOSE_BIN="$PWD/artifacts/aot/interpose"
else
  dotnet build -c Release src/Interpose.Cli -nologo -v quiet >&2
  unset INTERPOSE_BIN
fi
