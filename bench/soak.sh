#!/usr/bin/env bash
# Soak: SOAK_MINUTES (default 30) of steady, moderate load through the real `interpose run`, on loopback only.
#   bench/soak.sh                      # 30 minutes, native AOT build
#   SOAK_MINUTES=3 BUILD=jit bench/soak.sh
#   SOAK_RATE=1000 SOAK_CONNECTIONS=16 SOAK_NEWCONN_RATE=20 SOAK_INTERVAL=5 bench/soak.sh
#   INTERPOSE_ARGS="-w /tmp/soak.db" bench/soak.sh   # recording: the file and its WAL are sampled too; the WAL must stay
#                                                    # bounded and every request the clients completed must be a flow
# Two leanload clients run for the whole soak through one proxy against nginx: SOAK_CONNECTIONS intercepted HTTPS
# keep-alive connections at SOAK_RATE requests/s in all, and a new intercepted connection (CONNECT, two TLS handshakes)
# per request at SOAK_NEWCONN_RATE/s, so that connections also come and go. Every SOAK_INTERVAL seconds the proxy's
# RSS, descriptors and threads and the clients' running request and error counts go into a CSV (path printed at the
# end, in artifacts/); the end prints whether RSS and descriptors are flat over the last 10 minutes (the last half of
# a shorter soak) and the error count. Tools and builds as bench/load/run.sh (bench/load/prepare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/load/prepare.sh
exec python3 bench/soak.py "$@"
