#!/usr/bin/env bash
# One-command load benchmark: direct vs through Interpose, interleaved rounds, loopback only.
#   bench/load/run.sh                 # default: 3 rounds of 5 s per scenario, the native AOT build of `interpose`
#   ROUNDS=5 SECONDS_PER_ROUND=5 bench/load/run.sh
#   BUILD=jit bench/load/run.sh       # the same through `dotnet interpose.dll` (JIT), as `dotnet run` and the tool run it
#   LOAD_CLIENT=hey bench/load/run.sh # the load scenarios with hey (Go) instead of leanload, to compare
#   SCENARIOS=idle-5000 bench/load/run.sh
#   PEER=squid bench/load/run.sh      # the load scenarios also through squid 5.7 (ssl-bump), interleaved, side by side
#   PEER=haproxy bench/load/run.sh    # the ceiling: the load scenarios and the download also through HAProxy as a relay
#   PEER=haproxy-http bench/load/run.sh #   (mode tcp; haproxy-http: mode http, keep-alive to nginx), interleaved.
#     HAProxy answers no CONNECT, so the relay is no forward proxy: leanload (and curl) talk to it as to the origin, and it
#     terminates TLS with its own certificate for localhost and opens its own TLS to nginx. At keep-alive that is the
#     same work (CONNECT is once per connection); in https-newconn-c16 it skips the CONNECT's round trip, so its figure
#     there is an upper bound, as a ceiling should be. HAPROXY_THREADS sets its nbthread (default 2, as Interpose uses
#     both cores). h2-1k-s64, first-contact, first-contact-parts and idle-5000 run without it.
# The load generator is leanload (bench/load/leanload.c: C, one thread, epoll, OpenSSL; compiled here with the system
# compiler), so that the client's own CPU on the shared 2 cores does not slow the direct baseline more than the
# proxied rounds; the table shows the client's, nginx's and the proxy's CPU per request. Installs its tools from
# Debian when missing (hey, nginx-light, curl, openssl, python3, a C compiler and libssl-dev, h2load and socat for the
# HTTP/2 scenario (socat splices h2load's connections through CONNECT: h2load cannot use a proxy), and clang + zlib for the
# native build), raises the open-file limit to 20,000 (ulimit -n) for the idle scenario's 5,000 connections, builds
# the CLI in Release, starts nginx (HTTP + HTTPS origin) and `interpose run` as separate processes, prints Markdown
# tables, and stops every process it started (by PID). Every load loop is bounded in time; nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/load/prepare.sh
exec python3 bench/load/loadbench.py "$@"
