#!/usr/bin/env bash
# One-command load benchmark: direct vs through Interpose, interleaved rounds, loopback only.
#   bench/load/run.sh                 # default: 3 rounds of 5 s per scenario, the native AOT build of `interpose`
#   ROUNDS=5 SECONDS_PER_ROUND=5 bench/load/run.sh
#   BUILD=jit bench/load/run.sh       # the same through `dotnet interpose.dll` (JIT), as `dotnet run` and the tool run it
# Installs its tools from Debian when missing (hey, nginx-light, curl, openssl, python3, h2load from nghttp2-client
# and socat for the HTTP/2 scenario, which splices h2load's connections through CONNECT since h2load cannot use a
# proxy, and clang + zlib for the native build), builds the CLI in Release, starts nginx (HTTP + HTTPS origin) and `interpose run` as separate
# processes, prints a Markdown table, and stops every process it started (by PID). Every load loop is bounded in
# time; nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v hey >/dev/null || missing+=(hey)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v socat >/dev/null || missing+=(socat)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
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

if [ "$BUILD" = aot ]; then
  rid=$(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1)
  dotnet publish -c Release -r "$rid" -p:PublishAot=true src/Interpose.Cli -o artifacts/aot -nologo -v quiet >&2
  export INTERPOSE_BIN="$PWD/artifacts/aot/interpose"
else
  dotnet build -c Release src/Interpose.Cli -nologo -v quiet >&2
  unset INTERPOSE_BIN
fi
exec python3 bench/load/loadbench.py "$@"
