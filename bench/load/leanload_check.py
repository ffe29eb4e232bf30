#!/usr/bin/env python3
"""Self-check of leanload's HTTP/1.1 response framing against a byte-scripted loopback origin (run by prepare.sh after
compiling it, so that a benchmark never runs on a client that miscounts). Each case serves one scripted response, sent
in 7-byte pieces so that every parser state meets a split, and checks what leanload counted: requests, body bytes
per request, and errors by kind.
Usage: leanload_check.py PATH_TO_LEANLOAD"""
import json
import socket
import subprocess
import sys
import tempfile
import threading

# path: (response bytes, close after it, expected body bytes per response or None, expected error kind or None)
CASES = {
    # RFC 9112 §7.1: chunk extensions, several chunks, the last chunk and a trailer section.
    "/chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n"
                 b"0\r\nX-Trailer: 1\r\n\r\n", False, 15, None),
    # RFC 9112 §6.3 item 1: a 1xx is interim, the final response follows on the same connection.
    "/interim": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", False, 3, None),
    "/no-content": (b"HTTP/1.1 204 No Content\r\n\r\n", False, 0, None),
    # RFC 9112 §6.3 item 8: no framing, the body ends when the connection closes.
    "/until-close": (b"HTTP/1.1 200 OK\r\n\r\nuntil close", True, 11, None),
    # RFC 9112 §9.6: Connection: close, a new connection for the next request.
    "/close": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", True, 2, None),
    # RFC 9112 §6.3 item 4: Transfer-Encoding wins over Content-Length.
    "/te-and-cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                   False, 2, None),
    # Bytes beyond the response: nothing was pipelined, so they are an error, not the next response.
    "/extra": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", True, None, "parse"),
    # RFC 9112 §6.3 item 5: differing Content-Length values.
    "/two-lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", True, None, "parse"),
    # RFC 9112 §7.1: a chunk size that is not hex.
    "/bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True, None, "parse"),
    # A body cut short by the peer.
    "/short": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True, None, "closed"),
    "/not-found": (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", False, None, "status"),
}
SOCKET_TIMEOUT_S = 10  # bounds every read of the scripted origin


def serve(conn):
    buf = b""
    conn.settimeout(SOCKET_TIMEOUT_S)
    with conn:
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                response, close, _, _ = CASES[head.split(b" ")[1].decode()]
                for i in range(0, len(response), 7):
                    conn.sendall(response[i:i + 7])
                if close:
                    return
        except OSError:
            return


def main():
    leanload = sys.argv[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]

    def accept():
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    failures = []
    for path, (_, _, body, error) in CASES.items():
        r = subprocess.run([leanload, "-c", "2", "-z", "1", f"http://127.0.0.1:{port}{path}"], capture_output=True,
                           text=True, timeout=30)
        out = json.loads(r.stdout)
        errors = {k: n for k, n in out["errors"].items() if n}
        if error is None:
            ok = out["requests"] > 0 and not errors and out["body_bytes"] == body * out["requests"]
        else:
            ok = out["requests"] == 0 and list(errors) == [error]
        if not ok:
            failures.append(f"{path}: requests {out['requests']}, body bytes {out['body_bytes']}, errors {errors}")
    # --latency-log: one line per counted response, END_US LATENCY_US CONN, with CONN one of the -c connections.
    with tempfile.NamedTemporaryFile(mode="r", suffix=".log") as log:
        r = subprocess.run([leanload, "-c", "2", "-z", "1", "--latency-log", log.name, f"http://127.0.0.1:{port}/chunked"],
                           capture_output=True, text=True, timeout=30)
        lines = [tuple(int(x) for x in line.split()) for line in log]
        counted = json.loads(r.stdout)["requests"]
        if len(lines) != counted or counted == 0 or any(len(t) != 3 or t[1] < 0 or t[2] not in (0, 1) for t in lines):
            failures.append(f"--latency-log: {len(lines)} lines for {counted} responses")
    if failures:
        sys.exit("leanload self-check failed:\n  " + "\n  ".join(failures))
    print(f"leanload self-check: {len(CASES)} framing cases counted as expected, latency log complete", file=sys.stderr)


if __name__ == "__main__":
    main()
