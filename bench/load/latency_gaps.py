#!/usr/bin/env python3
"""Where a load run's tail comes from, from leanload's --latency-log (one line per response: END_US LATENCY_US CONN).

    python3 bench/load/latency_gaps.py LOG [LOG ...]

For each log it prints:
- the percentiles, as leanload reports them;
- stalls: gaps of at least STALL_MS in which no response at all completed (with 64 connections a response completes
  every few tens of µs, so a gap of a millisecond is the server, or the whole machine, standing still: a GC pause, the
  process descheduled), their number per second and the share of the run's time they cover;
- how many of the slowest 1 % of requests (latency at or above p99) were in flight during such a stall: near 100 %
  says the tail is made of whole-process stalls; a low share says single connections waited their turn while others
  were served (queueing order, unfair scheduling);
- fairness: requests per connection, min / median / max (a connection starved by LIFO scheduling completes fewer).
"""
import bisect
import statistics
import sys

# A stall: no response completed for this long. At 64 connections and 10,000-20,000 req/s a response completes every
# 50-100 µs on average, so 1 ms without one is 10-20 missing completions in a row: not chance, something stopped.
STALL_MS = 1.0


def analyse(path):
    ends, lats, conns = [], [], {}
    with open(path) as f:
        for line in f:
            end, lat, conn = (int(x) for x in line.split())
            ends.append(end)
            lats.append(lat)
            conns[conn] = conns.get(conn, 0) + 1
    if len(ends) < 100:
        return f"{path}: {len(ends)} responses, too few"
    order = sorted(range(len(ends)), key=ends.__getitem__)
    ends = [ends[i] for i in order]
    lats = [lats[i] for i in order]
    span_s = (ends[-1] - ends[0]) / 1e6
    ranked = sorted(lats)
    pct = lambda q: ranked[min(len(ranked) - 1, int(q * len(ranked)))] / 1000
    stall_us = STALL_MS * 1000
    stalls = [(a, b) for a, b in zip(ends, ends[1:]) if b - a >= stall_us]
    stall_time = sum(b - a for a, b in stalls)
    starts = [a for a, _ in stalls]
    p99_us = ranked[int(0.99 * len(ranked))]
    slow = [(e - l, e) for e, l in zip(ends, lats) if l >= p99_us]

    def overlaps_stall(begin, end):
        # Stalls do not overlap, so of those that began before this request ended, the last one ends latest.
        i = bisect.bisect_left(starts, end)
        return i > 0 and stalls[i - 1][1] > begin

    in_stall = sum(1 for b, e in slow if overlaps_stall(b, e))
    per_conn = sorted(conns.values())
    return (f"{path}: {len(ends)} responses in {span_s:.1f} s; p50 {pct(0.5):.2f} ms, p90 {pct(0.9):.2f}, "
            f"p99 {pct(0.99):.2f}, p99.9 {pct(0.999):.2f}; stalls ≥ {STALL_MS:g} ms: {len(stalls) / span_s:.1f}/s, "
            f"{stall_time / 1e4 / span_s:.1f} % of the time, longest {max((b - a for a, b in stalls), default=0) / 1000:.1f} ms, "
            f"median {statistics.median([b - a for a, b in stalls]) / 1000 if stalls else 0:.1f} ms; "
            f"requests ≥ p99 in flight during a stall: {in_stall} of {len(slow)} ({100 * in_stall / max(len(slow), 1):.0f} %); "
            f"requests per connection min / median / max: {per_conn[0]} / {statistics.median(per_conn):.0f} / {per_conn[-1]}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for p in sys.argv[1:]:
        print(analyse(p))
