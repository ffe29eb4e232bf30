/*
 * leanload: a lean HTTP/1.1 load client for bench/load (issue 19). One thread, epoll, non-blocking sockets,
 * OpenSSL; so that the load generator costs a small fraction of what the proxy under test does per request.
 *
 *   leanload [-c CONNS] [-z SECS] [-w WARMUP_SECS] [-x PROXY_HOST:PORT] [--cacert PEM] [--no-keepalive]
 *            [-r REQS_PER_SEC] [--progress SECS] [--latency-log FILE] URL
 *   leanload --idle N --hold SECS [-c SETUP_CONCURRENCY] [-x ...] [--cacert PEM] URL
 *
 * URL is http://HOST:PORT/PATH or https://HOST:PORT/PATH; HOST is localhost or an IPv4 literal (nothing is ever
 * resolved: a benchmark stays on loopback). Through -x, plain http is sent in absolute-form and https goes through a
 * CONNECT tunnel, with TLS inside it. TLS always verifies the chain against --cacert and the host name (there is no
 * switch to turn verification off) and offers only ALPN http/1.1.
 *
 * Load mode: CONNS connections each send one GET, read the whole response (Content-Length, chunked or until close),
 * then send the next: nothing is pipelined, so every response is counted exactly. --no-keepalive opens a new
 * connection (and runs a new, full TLS handshake) for every request. Latency runs from the moment a request is
 * wanted (the connection's start for a new connection) to the last byte of its response. Responses completing in the
 * WARMUP_SECS before the SECS measured are not counted. -r caps the total request rate.
 * Idle mode: opens N connections (CONNS at a time), one request each, prints "leanload: holding N" on stderr, holds
 * them idle for SECS (or until SIGTERM), counts those the peer closes, then closes all.
 * --latency-log FILE writes one line per measured response, "END_US LATENCY_US CONN": when it completed (µs since
 * the start), its latency (µs) and which connection carried it; to see whether slow requests come in bursts across
 * all connections at once (a pause of the server) or singly (one connection waiting its turn).
 * Output: one JSON object on stdout. --progress prints a JSON line with the running totals on stderr every SECS.
 * The 100 MiB download scenario keeps curl (one transfer whose throughput curl reports well).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 20000            /* the idle scenario holds 5,000; four times that, still under run.sh's ulimit -n */
#define MAX_SECONDS 7200           /* bound of -z, -w and --hold: the 30-minute soak with room; nothing runs unbounded */
#define REQUEST_TIMEOUT_US 10000000LL /* 10 s per request, the timeout the hey runs used (hey -t 10) */
#define BUF_SIZE 16384             /* read size and response-head limit: one TLS record, RFC 8446 §5.1 (2^14) */
#define HIST_FINE_US 100000        /* latency histogram: 1 µs buckets up to 100 ms ... */
#define HIST_COARSE_MS 60000       /* ... then 1 ms buckets up to 60 s (above: the last bucket) */
#define SCAN_INTERVAL_US 100000LL  /* how often request timeouts are checked: 100 ms, a hundredth of the timeout */

enum state { S_FREE, S_CONNECTING, S_TUNNEL, S_TLS, S_WAIT_RATE, S_SEND, S_HEAD, S_BODY_LENGTH, S_CHUNK_SIZE,
             S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILERS, S_BODY_EOF, S_HELD };
enum error_kind { E_CONNECT, E_TUNNEL, E_TLS, E_STATUS, E_PARSE, E_CLOSED, E_IO, E_TIMEOUT, E_KINDS };
static const char *error_names[E_KINDS] = { "connect", "tunnel", "tls", "status", "parse", "closed", "io", "timeout" };

struct conn {
    int fd;
    SSL *ssl;
    enum state st;
    int64_t start_us;  /* when the current request was wanted */
    int64_t remaining; /* body bytes (Content-Length) or chunk bytes left */
    uint64_t body;     /* body bytes of the current response, counted when it completes */
    int status, close_after, reused;
    const char *out;   /* bytes to send (request or CONNECT) and how far */
    size_t out_len, out_off;
    size_t len, off;   /* buf[off..len) is received and not consumed yet */
    char buf[BUF_SIZE];
};

/* Configuration and counters: one thread, so plain globals. */
static int use_tls, keepalive = 1, via_proxy, conns_n = 1, idle_n, progress_s;
static double rate;
static long duration_s = 10, warmup_s, hold_s;
static char host[256], authority[300], path[2048], request[4096], tunnel_request[1024];
static struct sockaddr_in target;
static SSL_CTX *ssl_ctx;
static int epfd;
static struct conn *conns;
static volatile sig_atomic_t stop_requested;
static int measuring;
static uint64_t requests, errors[E_KINDS], body_bytes, issued;
static uint64_t hist_fine[HIST_FINE_US], hist_coarse[HIST_COARSE_MS + 1];
static uint64_t held, setup_failed, opened, closed_while_held;
static int *rate_queue, rq_head, rq_count;
static int64_t rate_t0;
static FILE *latency_log;
static int64_t run_t0;

static int64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static double cpu_ms(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

static void record_latency(int64_t us) {
    if (us < HIST_FINE_US) hist_fine[us < 0 ? 0 : us]++;
    else hist_coarse[us / 1000 < HIST_COARSE_MS ? us / 1000 : HIST_COARSE_MS]++;
}

static double percentile_us(double q) {
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < HIST_FINE_US; i++) total += hist_fine[i];
    for (int i = 0; i <= HIST_COARSE_MS; i++) total += hist_coarse[i];
    if (total == 0) return -1;
    uint64_t rank = (uint64_t)(q * total + 0.999999);
    if (rank == 0) rank = 1;
    for (int i = 0; i < HIST_FINE_US; i++) if ((seen += hist_fine[i]) >= rank) return i;
    for (int i = 0; i <= HIST_COARSE_MS; i++) if ((seen += hist_coarse[i]) >= rank) return i * 1000.0;
    return -1;
}

static void usage(const char *why) {
    fprintf(stderr, "leanload: %s\nusage: leanload [-c N] [-z SECS] [-w SECS] [-x HOST:PORT] [--cacert PEM] "
            "[--no-keepalive] [-r RPS] [--progress SECS] [--latency-log FILE] URL\n       leanload --idle N --hold SECS [-c N] [-x ...] "
            "[--cacert PEM] URL\n", why);
    exit(2);
}

/* localhost or an IPv4 literal only: a load benchmark never resolves names. */
static int loopback_address(const char *h, int port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, strcmp(h, "localhost") == 0 ? "127.0.0.1" : h, &sa->sin_addr) == 1;
}

/* Closes c; graceful sends TLS close_notify first (never after a fatal TLS error, as OpenSSL requires). */
static void conn_close(struct conn *c, int graceful) {
    if (c->ssl) {
        if (graceful && SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl); /* one close_notify, not waiting for the peer's (RFC 8446 §6.1) */
        SSL_free(c->ssl);
        ERR_clear_error();
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->st = S_FREE;
}

static void start_request(struct conn *c, int64_t t);
static void open_conn(struct conn *c, int64_t t);

/* Whether a request may start now under -r: a token bucket without burst, refilled at RATE per second. */
static int rate_allows(int64_t t) {
    return rate <= 0 || (double)issued < rate * (double)(t - rate_t0) / 1e6 + 1;
}

/* The next request on c (keep-alive) or on a new connection in c's slot, once the rate allows it. */
static void next_request(struct conn *c, int64_t t) {
    if (stop_requested) { conn_close(c, 1); return; }
    if (!rate_allows(t)) {
        if (!keepalive) conn_close(c, 1);
        c->st = S_WAIT_RATE;
        rate_queue[(rq_head + rq_count++) % conns_n] = (int)(c - conns);
        return;
    }
    issued++;
    if (keepalive && c->fd >= 0) start_request(c, t);
    else { conn_close(c, 1); open_conn(c, t); }
}

static void fail(struct conn *c, enum error_kind kind) {
    if (c->st == S_HELD) closed_while_held++;
    else errors[kind]++;
    int was_setup = c->st != S_HELD;
    conn_close(c, 0);
    if (idle_n) { if (was_setup) setup_failed++; return; }
    next_request(c, now_us());
}

static void open_conn(struct conn *c, int64_t t) {
    struct sockaddr_in sa = target;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->ssl = NULL;
    c->start_us = t;
    c->reused = 0;
    c->len = c->off = 0;
    if (c->fd < 0) { errors[E_CONNECT]++; c->st = S_FREE; return; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as hey (Go) and nginx do */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    opened++;
    c->st = S_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        errors[E_CONNECT]++;
        conn_close(c, 0);
    }
}

static void start_request(struct conn *c, int64_t t) {
    c->start_us = t;
    c->out = request;
    c->out_len = strlen(request);
    c->out_off = 0;
    c->st = S_SEND;
}

static int start_tls(struct conn *c) {
    c->ssl = SSL_new(ssl_ctx);
    SSL_set_fd(c->ssl, c->fd);
    /* RFC 6066 §3: SNI carries a host name, never an IP literal; the name (or address) is checked either way. */
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
    else { SSL_set_tlsext_host_name(c->ssl, host); SSL_set1_host(c->ssl, host); }
    c->st = S_TLS;
    return 1;
}

/* Reads into buf[len..]; >0 bytes, 0 the peer closed, -1 would block, -2 error. Compacts consumed bytes first. */
static ssize_t fill(struct conn *c) {
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == BUF_SIZE) return -3;
    if (c->ssl) {
        int n = SSL_read(c->ssl, c->buf + c->len, (int)(BUF_SIZE - c->len));
        if (n > 0) { c->len += (size_t)n; return n; }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
    if (n > 0) { c->len += (size_t)n; return n; }
    if (n == 0) return 0;
    return errno == EAGAIN ? -1 : -2;
}

/* Sends out[out_off..]; 1 all sent, -1 would block, -2 error. */
static int flush_out(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : -2;
            }
            n = r;
        } else {
            n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (n < 0) return errno == EAGAIN ? -1 : -2;
        }
        c->out_off += (size_t)n;
    }
    return 1;
}

static int has_token(const char *v, size_t n, const char *token) {
    size_t t = strlen(token);
    for (size_t i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, token, t) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ')
            && (i + t == n || v[i + t] == ',' || v[i + t] == ' ' || v[i + t] == ';'))
            return 1;
    return 0;
}

/* Parses a response head in buf[off..end) (end is just after the empty line) and picks the body's framing.
 * Returns the next state, or S_FREE for a malformed head. */
static enum state parse_head(struct conn *c, const char *end) {
    const char *p = c->buf + c->off;
    /* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    if (end - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') return S_FREE;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    c->body = 0;
    if (c->status < 100 || c->status > 599) return S_FREE;
    int64_t length = -1;
    int chunked = 0, te = 0;
    c->close_after = p[7] == '0'; /* RFC 9112 §9.3: an HTTP/1.0 response does not persist (no keep-alive asked) */
    const char *line = memchr(p, '\n', (size_t)(end - p)) + 1;
    while (line < end - 2) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon) return S_FREE;
        size_t name_len = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) v++;
        size_t v_len = (size_t)(eol - v);
        while (v_len > 0 && (v[v_len - 1] == '\r' || v[v_len - 1] == ' ' || v[v_len - 1] == '\t')) v_len--;
        /* RFC 9110 §5.1: field names are case-insensitive. */
        if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            /* RFC 9110 §8.6: 1*DIGIT; differing values are an unrecoverable framing error (RFC 9112 §6.3 item 5). */
            int64_t n = 0;
            if (v_len == 0) return S_FREE;
            for (size_t i = 0; i < v_len; i++) {
                if (v[i] < '0' || v[i] > '9' || n > (INT64_MAX - 9) / 10) return S_FREE;
                n = n * 10 + (v[i] - '0');
            }
            if (length >= 0 && length != n) return S_FREE;
            length = n;
        } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            te = 1;
            /* RFC 9112 §6.3 item 4: chunked must be the final coding to delimit the message. */
            chunked = v_len >= 7 && strncasecmp(v + v_len - 7, "chunked", 7) == 0;
        } else if (name_len == 10 && strncasecmp(line, "Connection", 10) == 0) {
            /* RFC 9112 §9.6: "close" means the connection closes after this response. */
            if (has_token(v, v_len, "close")) c->close_after = 1;
            if (has_token(v, v_len, "keep-alive") && p[7] == '0') c->close_after = 0;
        }
        line = eol + 1;
    }
    c->off = (size_t)(end - c->buf);
    /* RFC 9112 §6.3 item 1: 1xx, 204 and 304 responses end at the head (a 1xx is interim: another head follows). */
    if (c->status < 200) return S_HEAD;
    if (c->status == 204 || c->status == 304) { c->remaining = 0; return S_BODY_LENGTH; }
    if (te) {
        if (chunked) return S_CHUNK_SIZE; /* item 4: Transfer-Encoding overrides Content-Length */
        c->close_after = 1;
        return S_BODY_EOF;                /* item 4: a response whose final coding is not chunked reads to close */
    }
    if (length >= 0) { c->remaining = length; return S_BODY_LENGTH; } /* item 6 */
    c->close_after = 1;
    return S_BODY_EOF; /* item 8: no framing, the body runs until the connection closes */
}

/* A whole response read: count it, then go on (next request, hold, or a new connection). */
static void response_done(struct conn *c, int64_t t) {
    if (c->off != c->len) { fail(c, E_PARSE); return; } /* bytes nobody asked for: nothing is pipelined */
    int ok = c->status >= 200 && c->status < 300;
    if (measuring || idle_n) {
        if (ok) {
            requests++;
            body_bytes += c->body;
            record_latency(t - c->start_us);
            if (latency_log && measuring)
                fprintf(latency_log, "%lld %lld %d\n", (long long)(t - run_t0), (long long)(t - c->start_us),
                        (int)(c - conns));
        }
        else errors[E_STATUS]++;
    }
    c->reused = 1;
    if (idle_n) {
        if (c->close_after || !ok) { conn_close(c, 1); setup_failed++; if (ok) errors[E_CLOSED]++; return; }
        c->st = S_HELD;
        held++;
        return;
    }
    if (c->close_after) conn_close(c, 1);
    next_request(c, t);
}

/* Runs c's state machine until it has to wait for the socket. */
static void drive(struct conn *c, uint32_t events) {
    for (;;) {
        int64_t t;
        ssize_t n;
        switch (c->st) {
        case S_FREE:
        case S_WAIT_RATE:
            return;
        case S_CONNECTING: {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) { fail(c, E_CONNECT); return; }
            if (via_proxy && use_tls) {
                /* RFC 9112 §3.2.3: CONNECT in authority-form opens a tunnel to the origin through the proxy. */
                c->out = tunnel_request;
                c->out_len = strlen(tunnel_request);
                c->out_off = 0;
                c->st = S_TUNNEL;
            } else if (use_tls) start_tls(c);
            else start_request(c, c->start_us);
            break;
        }
        case S_TUNNEL: {
            int r = flush_out(c);
            if (r == -1) return;
            if (r == -2) { fail(c, E_TUNNEL); return; }
            n = fill(c);
            if (n == -1) return;
            if (n <= 0) { fail(c, E_TUNNEL); return; }
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) break;
            /* RFC 9110 §9.3.6: any 2xx answer to CONNECT means the tunnel is open; the client speaks TLS first, so
             * no byte may follow the proxy's head. */
            if (c->len < 12 || c->buf[9] != '2' || (size_t)(end + 4 - c->buf) != c->len) { fail(c, E_TUNNEL); return; }
            c->len = c->off = 0;
            start_tls(c);
            break;
        }
        case S_TLS: {
            int r = SSL_connect(c->ssl);
            if (r == 1) { start_request(c, c->start_us); break; }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            fail(c, E_TLS);
            return;
        }
        case S_SEND: {
            int r = flush_out(c);
            if (r == -1) return;
            if (r == -2) { fail(c, E_IO); return; }
            c->st = S_HEAD;
            break;
        }
        case S_HEAD: {
            char *end = memmem(c->buf + c->off, c->len - c->off, "\r\n\r\n", 4);
            if (end) {
                enum state next = parse_head(c, end + 4);
                if (next == S_FREE) { fail(c, E_PARSE); return; }
                c->st = next;
                break;
            }
            n = fill(c);
            if (n == -1) return;
            if (n == -3) { fail(c, E_PARSE); return; } /* a head over 16 KiB */
            if (n <= 0) { fail(c, n == 0 ? E_CLOSED : E_IO); return; }
            break;
        }
        case S_BODY_LENGTH:
        case S_CHUNK_DATA: {
            size_t avail = c->len - c->off;
            size_t take = (int64_t)avail < c->remaining ? avail : (size_t)c->remaining;
            c->off += take;
            c->remaining -= (int64_t)take;
            c->body += take;
            if (c->remaining == 0) {
                if (c->st == S_CHUNK_DATA) { c->st = S_CHUNK_CRLF; break; }
                response_done(c, now_us());
                events = 0; /* a new socket in this slot waits for its own events */
                break;
            }
            n = fill(c);
            if (n == -1) return;
            if (n <= 0) { fail(c, n == 0 ? E_CLOSED : E_IO); return; }
            break;
        }
        case S_CHUNK_SIZE:
        case S_CHUNK_CRLF:
        case S_TRAILERS: {
            char *eol = memmem(c->buf + c->off, c->len - c->off, "\r\n", 2);
            if (!eol) {
                n = fill(c);
                if (n == -1) return;
                if (n == -3) { fail(c, E_PARSE); return; }
                if (n <= 0) { fail(c, n == 0 ? E_CLOSED : E_IO); return; }
                break;
            }
            char *line = c->buf + c->off;
            c->off = (size_t)(eol + 2 - c->buf);
            if (c->st == S_CHUNK_CRLF) {
                /* RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF */
                if (eol != line) { fail(c, E_PARSE); return; }
                c->st = S_CHUNK_SIZE;
            } else if (c->st == S_CHUNK_SIZE) {
                /* RFC 9112 §7.1: chunk-size = 1*HEXDIG, then optional ";" chunk-ext; last-chunk = 1*("0") */
                int64_t size = 0;
                const char *q = line;
                for (; q < eol && ((*q >= '0' && *q <= '9') || ((*q | 32) >= 'a' && (*q | 32) <= 'f')); q++) {
                    if (size > (INT64_MAX >> 4)) { fail(c, E_PARSE); return; }
                    size = size * 16 + (*q <= '9' ? *q - '0' : (*q | 32) - 'a' + 10);
                }
                if (q == line || (q < eol && *q != ';' && *q != ' ' && *q != '\t')) { fail(c, E_PARSE); return; }
                c->remaining = size;
                c->st = size == 0 ? S_TRAILERS : S_CHUNK_DATA;
            } else if (eol == line) {
                response_done(c, now_us()); /* RFC 9112 §7.1.2: the trailer section ends with an empty line */
                events = 0;
            }
            break;
        }
        case S_BODY_EOF:
            c->body += c->len - c->off;
            c->off = c->len;
            n = fill(c);
            if (n == -1) return;
            if (n == 0) { t = now_us(); c->close_after = 1; response_done(c, t); events = 0; break; } /* §6.3 item 8 */
            if (n < 0) { fail(c, E_IO); return; }
            break;
        case S_HELD:
            /* An idle connection with something to read: the peer closed it (or sent what nobody asked for). */
            if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
            n = fill(c);
            if (n == -1) return;
            closed_while_held++;
            held--;
            conn_close(c, 1);
            return;
        }
    }
}

static void print_errors(FILE *f) {
    fprintf(f, "{");
    for (int k = 0; k < E_KINDS; k++) fprintf(f, "%s\"%s\": %llu", k ? ", " : "", error_names[k], (unsigned long long)errors[k]);
    fprintf(f, "}");
}

static uint64_t error_total(void) {
    uint64_t s = 0;
    for (int k = 0; k < E_KINDS; k++) s += errors[k];
    return s;
}

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void parse_url(const char *url) {
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0) { rest = url + 8; use_tls = 1; }
    else usage("URL must start with http:// or https://");
    const char *slash = strchr(rest, '/');
    size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (alen == 0 || alen >= sizeof host) usage("bad URL authority");
    memcpy(authority, rest, alen);
    authority[alen] = 0;
    snprintf(path, sizeof path, "%s", slash ? slash : "/");
    char *colon = strrchr(authority, ':');
    int port = use_tls ? 443 : 80;
    size_t hlen = colon ? (size_t)(colon - authority) : alen;
    memcpy(host, authority, hlen);
    host[hlen] = 0;
    if (colon) port = atoi(colon + 1);
    if (port <= 0 || port > 65535) usage("bad port");
    if (!via_proxy && !loopback_address(host, port, &target)) usage("host must be localhost or an IPv4 literal");
}

static long bounded(const char *v, long lo, long hi, const char *what) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi) usage(what);
    return n;
}

int main(int argc, char **argv) {
    const char *cafile = NULL, *proxy = NULL, *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-keepalive")) { keepalive = 0; continue; }
        if (a[0] == '-' && i + 1 >= argc) usage("an option without its value");
        if (0) {}
        else if (!strcmp(a, "-c")) conns_n = (int)bounded(argv[++i], 1, MAX_CONNS, "-c: 1..20000");
        else if (!strcmp(a, "-z")) duration_s = bounded(argv[++i], 1, MAX_SECONDS, "-z: 1..7200");
        else if (!strcmp(a, "-w")) warmup_s = bounded(argv[++i], 0, MAX_SECONDS, "-w: 0..7200");
        else if (!strcmp(a, "-x")) { proxy = argv[++i]; via_proxy = 1; }
        else if (!strcmp(a, "--cacert")) cafile = argv[++i];
        else if (!strcmp(a, "-r")) rate = (double)bounded(argv[++i], 1, 10000000, "-r: 1..10000000");
        else if (!strcmp(a, "--progress")) progress_s = (int)bounded(argv[++i], 1, MAX_SECONDS, "--progress: 1..7200");
        else if (!strcmp(a, "--idle")) idle_n = (int)bounded(argv[++i], 1, MAX_CONNS, "--idle: 1..20000");
        else if (!strcmp(a, "--latency-log")) {
            if (!(latency_log = fopen(argv[++i], "w"))) { perror("--latency-log"); return 2; }
        }
        else if (!strcmp(a, "--hold")) hold_s = bounded(argv[++i], 0, MAX_SECONDS, "--hold: 0..7200");
        else if (a[0] == '-') usage("unknown option");
        else { if (url) usage("one URL"); url = a; }
    }
    if (!url) usage("no URL");
    parse_url(url);
    if (via_proxy) {
        char ph[256];
        const char *colon = strrchr(proxy, ':');
        if (!colon || (size_t)(colon - proxy) >= sizeof ph) usage("-x HOST:PORT");
        memcpy(ph, proxy, (size_t)(colon - proxy));
        ph[colon - proxy] = 0;
        if (!loopback_address(ph, atoi(colon + 1), &target)) usage("proxy must be localhost or an IPv4 literal");
    }
    if (use_tls && !cafile) usage("https needs --cacert (verification cannot be turned off)");
    if (idle_n && conns_n > idle_n) conns_n = idle_n;
    /* RFC 9112 §3.2.2: a request to a proxy for plain http carries the absolute-form target; RFC 9110 §7.2: Host
     * is the target's authority either way. */
    snprintf(request, sizeof request, "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: leanload\r\n%s\r\n",
             via_proxy && !use_tls ? "http://" : "", via_proxy && !use_tls ? authority : "", path, authority,
             keepalive ? "" : "Connection: close\r\n");
    snprintf(tunnel_request, sizeof tunnel_request, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
    if (use_tls) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!ssl_ctx || SSL_CTX_load_verify_locations(ssl_ctx, cafile, NULL) != 1) {
            ERR_print_errors_fp(stderr);
            usage("cannot load --cacert");
        }
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
        /* Every new connection runs a full handshake, as hey's (Go's default client keeps no session cache). */
        SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
        static const unsigned char alpn[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
        SSL_CTX_set_alpn_protos(ssl_ctx, alpn, sizeof alpn);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int slots = idle_n ? idle_n : conns_n;
    conns = calloc((size_t)slots, sizeof *conns);
    rate_queue = calloc((size_t)slots, sizeof *rate_queue);
    if (!conns || !rate_queue) { perror("calloc"); return 1; }
    for (int i = 0; i < slots; i++) conns[i].fd = -1;

    int64_t t0 = now_us(), warm_end = t0 + warmup_s * 1000000LL, end = warm_end + duration_s * 1000000LL;
    int64_t last_scan = t0, next_progress = t0 + progress_s * 1000000LL, hold_end = 0, measure_start = t0;
    double cpu0 = cpu_ms();
    rate_t0 = run_t0 = t0;
    int next_slot = 0;
    measuring = warmup_s == 0 && !idle_n;
    for (; next_slot < conns_n; next_slot++) next_request(&conns[next_slot], t0);
    struct epoll_event evs[1024];
    while (!stop_requested) {
        int timeout = rq_count > 0 ? 1 : 50;
        int n = epoll_wait(epfd, evs, 1024, timeout);
        for (int i = 0; i < n; i++) drive(evs[i].data.ptr, evs[i].events);
        int64_t t = now_us();
        while (rq_count > 0 && rate_allows(t)) {
            struct conn *c = &conns[rate_queue[rq_head]];
            rq_head = (rq_head + 1) % conns_n;
            rq_count--;
            issued++;
            if (keepalive && c->fd >= 0) start_request(c, t); else open_conn(c, t);
            drive(c, 0);
        }
        if (t - last_scan >= SCAN_INTERVAL_US) {
            last_scan = t;
            for (int i = 0; i < slots; i++) {
                struct conn *c = &conns[i];
                if (c->st != S_FREE && c->st != S_HELD && c->st != S_WAIT_RATE && t - c->start_us > REQUEST_TIMEOUT_US)
                    fail(c, E_TIMEOUT);
            }
        }
        if (idle_n) {
            /* Setup: CONNS connections at a time until all N are held (or failed), then the hold. */
            while (next_slot < idle_n && (int)(opened - held - setup_failed - closed_while_held) < conns_n) {
                open_conn(&conns[next_slot], t);
                if (conns[next_slot].st == S_FREE) setup_failed++;
                next_slot++;
            }
            if (!hold_end && held + setup_failed + closed_while_held >= (uint64_t)idle_n) {
                fprintf(stderr, "leanload: holding %llu\n", (unsigned long long)held);
                hold_end = t + hold_s * 1000000LL;
                measure_start = t;
            }
            if (hold_end && t >= hold_end) break;
            continue;
        }
        if (!measuring && t >= warm_end) {
            measuring = 1;
            requests = body_bytes = 0;
            memset(errors, 0, sizeof errors);
            memset(hist_fine, 0, sizeof hist_fine);
            memset(hist_coarse, 0, sizeof hist_coarse);
            cpu0 = cpu_ms();
            measure_start = t;
        }
        if (progress_s && t >= next_progress) {
            next_progress += progress_s * 1000000LL;
            fprintf(stderr, "{\"t\": %.1f, \"requests\": %llu, \"errors\": %llu}\n", (t - t0) / 1e6,
                    (unsigned long long)requests, (unsigned long long)error_total());
        }
        if (t >= end) break;
    }
    int64_t t1 = now_us();
    double cpu = cpu_ms() - cpu0, secs = (t1 - measure_start) / 1e6;
    for (int i = 0; i < slots; i++) if (conns[i].st != S_FREE) conn_close(&conns[i], 1);
    if (latency_log) fclose(latency_log);
    if (idle_n) {
        printf("{\"mode\": \"idle\", \"connections\": %d, \"held\": %llu, \"setup_failed\": %llu, "
               "\"closed_while_held\": %llu, \"held_seconds\": %.1f, \"errors\": ", idle_n, (unsigned long long)held,
               (unsigned long long)setup_failed, (unsigned long long)closed_while_held, hold_end ? secs : 0.0);
        print_errors(stdout);
        printf(", \"latency_us\": {\"p50\": %.0f, \"p99\": %.0f}}\n", percentile_us(0.5), percentile_us(0.99));
        return held + closed_while_held == (uint64_t)idle_n && closed_while_held == 0 ? 0 : 1;
    }
    printf("{\"mode\": \"load\", \"connections\": %d, \"keepalive\": %s, \"seconds\": %.3f, \"requests\": %llu, "
           "\"errors_total\": %llu, \"errors\": ", conns_n, keepalive ? "true" : "false", secs,
           (unsigned long long)requests, (unsigned long long)error_total());
    print_errors(stdout);
    printf(", \"rps\": %.1f, \"body_bytes\": %llu, \"latency_us\": {\"p50\": %.0f, \"p90\": %.0f, \"p99\": %.0f, "
           "\"p999\": %.0f}, \"cpu_ms\": %.1f, \"cpu_us_per_request\": %.2f}\n",
           requests / secs, (unsigned long long)body_bytes, percentile_us(0.5), percentile_us(0.9),
           percentile_us(0.99), percentile_us(0.999), cpu, requests ? cpu * 1000 / requests : 0.0);
    return 0;
}
