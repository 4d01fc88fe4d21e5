#!/usr/bin/env python3
"""make bench-scale: how many concurrent idle connections this machine holds, both ends on
it at once (issue 20). Never part of `make test`; root (a network namespace of its own).

Steps of SCALE_STEPS (default 100000,250000,500000,1000000) up to SCALE (default 1000000):
for each, bin/echo-server with ceil(N / 18,000) workers (the per-process fd limit is
20,000) and bin/load-client with as many --procs and ceil(N / 32,256) + 1 source addresses
(each source has the widened range 1024-65535 towards the server; the client's port-budget
check wants at most half of it per source), scenario idle with a heartbeat every
SCALE_HEARTBEAT (60 s) sent on the ticks of SCALE_HEARTBEAT_TICK (1 s: --heartbeat-tick),
ramped at SCALE_RATE new connections per second (2,500) and held SCALE_WINDOW seconds (60)
past the ramp's end (--hold = N / rate + window), so all N are open at once for that long;
--expect established=N and --timeline. A step that fails stops the ones above it. The
server runs with heartbeat_timeout 3m (a client heartbeat every 60 s against the default
60 s would race it), keepalive_idle 2m (with the default 60 s every connection's keepalive
timer would send a probe just before each heartbeat: twice the segments), backlog 65535 and
/metrics; SCALE_SERVER_SETS=k=v,... adds settings; SCALE_PROCS=P runs at least P workers and
client processes (the same count of processes at a smaller step: what wake-ups spread over
many processes cost).

Why these defaults, measured here: a heartbeat round trip costs 77 CPU-us at both ends
together with 56 processes a side and no tick, 45-50 with a 100 ms tick, 39 with 1 s (each
process then wakes once per tick for all its due heartbeats, and the workers find them
together); a new connection costs about 100 us at both ends, and closing one about as much.
At 1,000,000 a ramp of 10,000/s or 5,000/s on top of 16,700 heartbeats a second saturated
the two cores near 870,000 connections, and the close phase (at the ramp's rate) did again:
the failures were the client's 10 s deadlines (echo and connect), never a server close.

Per step: time to open all N (from the timeline), connect and first-echo latency
percentiles, the peak concurrent ESTABLISHED on both ends (timeline), failures by phase,
server user memory per connection (malloc heap and RSS summed over the workers; the
client's RSS too), kernel memory per socket (Slab delta / 2N sockets), the census
time at that size (load-client states, and the server's own /metrics figure), and the CPU
seconds of server and client (every process) during the hold, per second of hold.

The namespace: the bench unshares a network namespace, sets net.ipv4.tcp_child_ehash_entries
there (SCALE_EHASH, default 2^21) and unshares a second one, its own: the connections of the
run get a socket hash table of their own instead of the host's shared one (262,144 buckets
here), so their lookups do not walk chains of 8 and the host's other sock_diag users (other
tests' censuses walk every socket of the shared table) never walk our 2,000,000 sockets,
nor we theirs. ip_local_port_range (1024-65535), net.core.somaxconn and tcp_migrate_req are
set in it only. Nothing host-wide is changed. Every process dies with the bench (PR_SET_PDEATHSIG), and the
namespaces with the last of them.

Safety: the step stops (and is reported as stopped) when MemAvailable falls under
SCALE_MIN_AVAIL_MB (3072); the kernel's memory for 2,000,000 sockets is several GB.

Results: a table on stdout, build/bench/scale.json (with each second's CPU of both ends
and of the machine, per_second), the timelines and logs in build/bench/logs/."""
import ctypes
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (helpers: processes, /proc readers)

REPO = bench.REPO
OUT = bench.OUT
LOGS = bench.LOGS
SERVER, CLIENT = REPO / "bin" / "echo-server", REPO / "bin" / "load-client"
SCALE = int(os.environ.get("SCALE", "1000000"))
STEPS = [int(s) for s in os.environ.get("SCALE_STEPS", "100000,250000,500000,1000000")
         .split(",") if s and int(s) <= SCALE]
RATE = int(os.environ.get("SCALE_RATE", "2500"))
WINDOW = float(os.environ.get("SCALE_WINDOW", "60"))
HEARTBEAT = os.environ.get("SCALE_HEARTBEAT", "60s")
HEARTBEAT_TICK = os.environ.get("SCALE_HEARTBEAT_TICK", "1s")
EHASH = int(os.environ.get("SCALE_EHASH", str(1 << 21)))
MIN_AVAIL_MB = int(os.environ.get("SCALE_MIN_AVAIL_MB", "3072"))
PROCS = int(os.environ.get("SCALE_PROCS", "0"))
SERVER_SETS = [s for s in os.environ.get("SCALE_SERVER_SETS", "").split(",") if s]
PER_PROC = 18000       # connections per server worker and per client process (fd limit 20,000)
PORT_LO, PORT_HI = 1024, 65535
PER_SOURCE = (PORT_HI - PORT_LO + 1) // 2  # the client warns past half a source's range
CLONE_NEWNET = 0x40000000
RESULTS = {"steps": []}


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def write_proc(path, value):
    with open(path, "w") as f:
        f.write(value)


def enter_netns():
    """Two unshares: the first namespace only carries tcp_child_ehash_entries for the
    second, which is where the bench runs (see the docstring)."""
    if os.geteuid() != 0:
        log("bench-scale: needs root (a network namespace of its own)")
        sys.exit(2)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    try:
        write_proc("/proc/sys/net/ipv4/tcp_child_ehash_entries", str(EHASH))
    except OSError as e:  # a kernel before 6.1: the shared table
        log(f"bench-scale: tcp_child_ehash_entries: {e}: the host's socket table is shared")
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    write_proc("/proc/sys/net/ipv4/ip_local_port_range", f"{PORT_LO} {PORT_HI}")
    write_proc("/proc/sys/net/core/somaxconn", "65535")
    write_proc("/proc/sys/net/ipv4/tcp_migrate_req", "1")  # the server warns without it
    with open("/proc/sys/net/ipv4/tcp_ehash_entries") as f:
        RESULTS["ehash_entries"] = int(f.read())


def tree_cpu(pids):
    total = 0.0
    for pid in pids:
        st = bench.proc_stat(pid)
        if st:
            total += (int(st[11]) + int(st[12])) / bench.CLK_TCK
    return total


def last_row(path):
    """The timeline's last complete row as a dict, or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[-1].count(",") == lines[0].count(",") and len(lines) < 3:
        return None
    with open(path) as f:
        head = f.readline().strip().split(",")
    for line in reversed(lines):
        v = line.split(",")
        if len(v) == len(head) and v[0] != "time_s":
            return dict(zip(head, v))
    return None


def read_timeline(path):
    with open(path) as f:
        head = f.readline().strip().split(",")
        rows = [dict(zip(head, line.strip().split(","))) for line in f if line.strip()]
    return [r for r in rows if len(r) == len(head)]


def num(v):
    return int(v) if v not in ("", None) else 0


def metric(port, name):
    """One value of the server's /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Sampler(threading.Thread):
    """Once a second: the timeline's last row, memory, CPU of both ends. Stops the step
    (SIGTERM to the client) when memory runs short."""

    def __init__(self, srv_pids, cli, timeline, n):
        super().__init__(daemon=True)
        self.srv_pids, self.cli, self.timeline, self.n = srv_pids, cli, timeline, n
        self.samples, self.stop_flag, self.low_memory = [], threading.Event(), False

    def run(self):
        t0 = time.monotonic()
        while not self.stop_flag.is_set() and self.cli.poll() is None:
            cli_pids = [self.cli.pid] + bench.children_of(self.cli.pid)
            avail = bench.meminfo_kb("MemAvailable")
            row = last_row(self.timeline) or {}
            self.samples.append({
                "t": time.monotonic() - t0, "avail_kb": avail, "cores": bench.cpu_times(),
                "slab_kb": bench.meminfo_kb("Slab"), "srv_cpu": tree_cpu(self.srv_pids),
                "cli_cpu": tree_cpu(cli_pids), "open": num(row.get("open")),
                "server_established": num(row.get("server_established"))})
            if avail < MIN_AVAIL_MB * 1024 and not self.low_memory:
                self.low_memory = True
                log(f"scale: MemAvailable {avail // 1024} MB < {MIN_AVAIL_MB} MB: stopping")
                self.cli.send_signal(signal.SIGTERM)
            self.stop_flag.wait(1.0)


def start_server(n, name):
    workers = min(64, max(1, math.ceil(n / PER_PROC)))
    if PROCS:  # more processes than the fd limit needs: what the per-process count costs
        workers = max(workers, PROCS)
    port_file, mport_file = LOGS / f"{name}.port", LOGS / f"{name}.mport"
    for p in (port_file, mport_file):
        p.unlink(missing_ok=True)
    argv = [SERVER, "--listen", "127.0.0.1:0", "--port-file", port_file,
            "--metrics-port-file", mport_file, "--set", f"workers={workers}",
            "--set", "backlog=65535", "--set", "metrics_listen=127.0.0.1:0",
            "--set", "heartbeat_timeout=3m", "--set", "keepalive_idle=2m",
            "--set", "log_level=warn"]
    for s in SERVER_SETS:
        argv += ["--set", s]
    log_file = open(LOGS / f"{name}.server.log", "w")
    proc = bench.PROCS.start(argv, stdout=log_file, stderr=subprocess.STDOUT)
    bench.wait_until(lambda: (port_file.exists() and mport_file.exists()) or
                     proc.poll() is not None, 60, "the server to listen")
    if proc.poll() is not None:
        raise RuntimeError(f"echo-server exited {proc.returncode}: see {log_file.name}")
    if workers > 1:
        bench.wait_until(lambda: len(bench.children_of(proc.pid)) >= workers, 60,
                         f"{workers} workers")
    return proc, log_file, workers, int(port_file.read_text()), int(mport_file.read_text())


def server_memory(proc, log_path, workers):
    """Heap (mallinfo2) and RSS summed over the workers, from their counters lines."""
    size = log_path.stat().st_size
    pids = bench.children_of(proc.pid) or [proc.pid]
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    found = {}
    rx = re.compile(r"echo-server\[(\d+)\] \w+: counters (\{.*\})\s*$")

    def scan():
        with open(log_path) as f:
            f.seek(size)
            for line in f:
                m = rx.search(line)
                if m and int(m.group(1)) in pids:
                    found[int(m.group(1))] = json.loads(m.group(2))
        return len(found) == len(pids)
    bench.wait_until(scan, 60, "the workers' counters", interval=0.1)
    return (sum(c["heap_kb"] for c in found.values()),
            sum(bench.proc_status_kb(p, "VmRSS") for p in set(pids + [proc.pid])))


def census_time(port, mport):
    out = subprocess.run([CLIENT, "states", "--port", str(port), "--json"],
                         capture_output=True, text=True, timeout=300).stdout
    d = json.loads(out)
    own = metric(mport, "teardown_census_duration_seconds")
    return {"client_states_local_ms": round(d["local"]["elapsed_us"] / 1000, 1),
            "client_states_remote_ms": round(d["remote"]["elapsed_us"] / 1000, 1),
            "sockets_local": d["local"]["total"], "sockets_remote": d["remote"]["total"],
            "server_census_ms": None if own is None else round(own * 1000, 1)}


def client_argv(n, port, workers, timeline, hold_s):
    nsrc = math.ceil(n / PER_SOURCE) + 1
    return [CLIENT, "--server", f"127.0.0.1:{port}", "--scenario", "idle",
            "--connections", n, "--rate", RATE, "--heartbeat", HEARTBEAT,
            "--heartbeat-tick", HEARTBEAT_TICK,
            "--hold", f"{round(hold_s)}s", "--procs", workers,
            "--sources", f"127.1.0.1-127.1.0.{nsrc}", "--timeline", timeline,
            "--expect", f"established={n}", "--json", "--quiet"], nsrc


def wait_open(sampler, cli, n, hold_s):
    """Until the timeline says all n are open (True), or the client ends or its hold is
    over (False: the step goes on to its end and reports what happened)."""
    deadline = time.monotonic() + hold_s + 60
    while time.monotonic() < deadline and cli.poll() is None:
        if any(s["open"] >= n for s in sampler.samples):
            return True
        time.sleep(0.5)
    return False


def hold_figures(samples, n):
    """The hold: from the first sample with all N open to the last one; CPU per second of
    it for both ends."""
    full = [s for s in samples if s["open"] >= n]
    if len(full) < 2:
        return {"held_s": 0}
    a, b = full[0], full[-1]
    dt = b["t"] - a["t"]
    srv, cli = (b["srv_cpu"] - a["srv_cpu"]) / dt, (b["cli_cpu"] - a["cli_cpu"]) / dt
    beats = n / heartbeat_s()  # heartbeats per second during the hold
    return {"held_s": round(dt, 1), "server_cpu_per_s": round(srv, 3),
            "client_cpu_per_s": round(cli, 3), "heartbeats_per_s": round(beats),
            # everything of the hold (censuses, timers too) over its heartbeats: an upper
            # bound of one heartbeat's cost, both ends
            "cpu_us_per_heartbeat": round((srv + cli) / beats * 1e6, 1)}


def heartbeat_s():
    """SCALE_HEARTBEAT in seconds (60s, 2m, 500ms, or plain seconds)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", HEARTBEAT)
    if not m:
        raise SystemExit(f"scale: SCALE_HEARTBEAT={HEARTBEAT!r}: want e.g. 60s or 2m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def per_second(samples):
    """Each second of the step: [t, server CPU s/s, client CPU s/s, machine busy cores,
    connections open]: where the CPU went, beside the timeline."""
    out = []
    for a, b in zip(samples, samples[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        busy = sum((b["cores"][c][0] - a["cores"][c][0]) / max(1, b["cores"][c][1] -
                                                                 a["cores"][c][1])
                   for c in b["cores"] if c in a["cores"])
        out.append([round(b["t"], 1), round((b["srv_cpu"] - a["srv_cpu"]) / dt, 2),
                    round((b["cli_cpu"] - a["cli_cpu"]) / dt, 2), round(busy, 2), b["open"]])
    return out


def timeline_figures(path, n):
    rows = read_timeline(path)
    cli = [num(r["client_established"]) for r in rows]
    srv = [num(r["server_established"]) for r in rows]
    both = [min(c, s) for c, s in zip(cli, srv)]
    t_open = next((float(r["time_s"]) for r in rows if num(r["open"]) >= n), None)
    gaps = [float(b["time_s"]) - float(a["time_s"]) for a, b in zip(rows, rows[1:])]
    return {"peak_client_established": max(cli, default=0),
            "peak_server_established": max(srv, default=0),
            "peak_both_established": max(both, default=0),
            "time_to_open_s": t_open, "timeline_rows": len(rows),
            "timeline_max_gap_s": round(max(gaps, default=0), 2)}


def lat(summary, name):
    s = summary.get(name) or {}
    return {k: s.get(k) for k in ("p50_ms", "p99_ms", "p99.9_ms", "max_ms")}


def run_step(n):
    name = f"scale-{n}"
    srv = log_file = cli = None
    hold_s = n / RATE + WINDOW
    r = {"connections": n, "rate": RATE, "hold_s": round(hold_s), "heartbeat": HEARTBEAT,
         "heartbeat_tick": HEARTBEAT_TICK}
    try:
        srv, log_file, workers, port, mport = start_server(n, name)
        srv_pids = [srv.pid] + bench.children_of(srv.pid)
        time.sleep(1.0)
        slab0 = bench.meminfo_kb("Slab")
        heap0, rss0 = server_memory(srv, LOGS / f"{name}.server.log", workers)
        timeline = LOGS / f"{name}.timeline.csv"
        argv, nsrc = client_argv(n, port, workers, timeline, hold_s)
        r.update(workers=workers, client_procs=workers, sources=nsrc)
        log(f"scale: {n:,} connections, {workers} workers and client processes, {nsrc} "
            f"sources, {RATE}/s, hold {hold_s:.0f} s")
        cli_err = open(LOGS / f"{name}.client.log", "w")
        # The result to a file, not a pipe: a client stopped early must not block on it.
        cli_out = open(LOGS / f"{name}.client.json", "w+")
        t0 = time.monotonic()
        cli = bench.PROCS.start(argv, stdout=cli_out, stderr=cli_err, text=True)
        sampler = Sampler(srv_pids, cli, timeline, n)
        sampler.start()
        reached = wait_open(sampler, cli, n, hold_s)
        if reached:
            time.sleep(2.0)  # the allocator and the kernel settle
            heap, rss = server_memory(srv, LOGS / f"{name}.server.log", workers)
            slab = bench.meminfo_kb("Slab")
            cli_rss = sum(bench.proc_status_kb(p, "VmRSS")
                          for p in [cli.pid] + bench.children_of(cli.pid))
            r.update(heap_bytes_per_conn=round((heap - heap0) * 1024 / n),
                     client_rss_bytes_per_conn=round(cli_rss * 1024 / n),
                     rss_bytes_per_conn=round((rss - rss0) * 1024 / n),
                     slab_bytes_per_socket=round((slab - slab0) * 1024 / (2 * n)))
            log(f"scale: {n:,} open; census timing")
            r["census"] = census_time(port, mport)
        cli.wait(timeout=hold_s + 600)
        cli_out.seek(0)
        out = cli_out.read()
        r["wall_s"] = round(time.monotonic() - t0, 1)
        sampler.stop_flag.set()
        sampler.join()
        r["low_memory_stop"] = sampler.low_memory
        r["client_exit"] = cli.returncode
        d = json.loads(out) if out.strip() else {}
        c = d.get("counts", {})
        r.update(established=c.get("established"), failed=c.get("failed"),
                 echo_mismatch=c.get("echo_mismatch"),
                 failures={ph: v for ph, v in (d.get("failures") or {}).items() if v},
                 connect=lat(d.get("summary", {}), "connect"),
                 first_echo=lat(d.get("summary", {}), "first_echo"),
                 rtt=lat(d.get("summary", {}), "rtt"))
        r.update(timeline_figures(timeline, n))
        r.update(hold_figures(sampler.samples, n))
        r["min_avail_mb"] = min(s["avail_kb"] for s in sampler.samples) // 1024 \
            if sampler.samples else None
        r["kernel"] = d.get("kernel", {}).get("delta") or {}
        r["per_second"] = per_second(sampler.samples)
        r["ok"] = cli.returncode == 0 and r["failed"] == 0 and \
            r["peak_both_established"] >= n
        return r
    finally:
        if cli is not None:
            bench.PROCS.stop(cli, timeout=120)
        if srv is not None:
            bench.PROCS.stop(srv, timeout=120,
                             extra_pids=[(p, bench.proc_start_time(p))
                                         for p in bench.children_of(srv.pid)])
            log_file.close()


def fmt_ms(h):
    return "/".join("-" if h.get(k) is None else f"{h[k]:.0f}" if h[k] >= 10 else f"{h[k]:.1f}"
                    for k in ("p50_ms", "p99_ms", "p99.9_ms"))


def table():
    lines = [f"bench-scale: idle connections, heartbeat {HEARTBEAT} (tick {HEARTBEAT_TICK}), "
             f"{RATE}/s, window "
             f"{WINDOW:.0f} s past the ramp; namespace of its own, ehash "
             f"{RESULTS.get('ehash_entries')} buckets, ports {PORT_LO}-{PORT_HI}",
             f"{'conns':>9} {'wrk':>4} {'src':>4} {'open s':>7} {'peak cli':>9} "
             f"{'peak srv':>9} {'failed':>7} {'connect ms':>14} {'1st echo ms':>14} "
             f"{'heap B':>7} {'RSS B':>6} {'cli RSS':>7} {'slab B/s':>8} {'census ms':>16} "
             f"{'cpu srv/cli':>12}{'us/hb':>7}"]
    for r in RESULTS["steps"]:
        if "error" in r:
            lines.append(f"{r['connections']:>9,} failed: {r['error']}")
            continue
        c = r.get("census", {})
        cen = (f"{c.get('client_states_local_ms', 0):.0f}+"
               f"{c.get('client_states_remote_ms', 0):.0f}/{c.get('server_census_ms')}")
        lines.append(
            f"{r['connections']:>9,} {r.get('workers', 0):>4} {r.get('sources', 0):>4} "
            f"{r.get('time_to_open_s') or 0:>7.1f} {r.get('peak_client_established', 0):>9,} "
            f"{r.get('peak_server_established', 0):>9,} {r.get('failed')!s:>7} "
            f"{fmt_ms(r.get('connect', {})):>14} {fmt_ms(r.get('first_echo', {})):>14} "
            f"{r.get('heap_bytes_per_conn', '-')!s:>7} {r.get('rss_bytes_per_conn', '-')!s:>6} "
            f"{r.get('client_rss_bytes_per_conn', '-')!s:>7} "
            f"{r.get('slab_bytes_per_socket', '-')!s:>8} {cen:>16} "
            f"{r.get('server_cpu_per_s', 0):>5.2f}/{r.get('client_cpu_per_s', 0):<5.2f}"
            f"{r.get('cpu_us_per_heartbeat', '-')!s:>7}")
        if r.get("failures"):
            lines.append(f"{'':>9} failures by phase: {r['failures']}")
    lines.append("open s: from the client's start until all are open (timeline); connect and "
                 "first echo: p50/p99/p99.9; heap and RSS: server bytes per connection over all "
                 "workers, cli RSS: the client's; slab B/s: Slab delta per socket (2 per "
                 "connection); census: load-client states local+remote / the server's own "
                 "census; cpu: CPU seconds per second of hold, server and client; us/hb: both ends' CPU "
                 "of the hold per heartbeat (an upper bound: censuses and timers included)")
    return lines


def save():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(RESULTS, indent=2) + "\n")


def main():
    for b in (SERVER, CLIENT):
        if not b.exists():
            log(f"bench-scale: {b} is missing (make builds it)")
            return 2
    enter_netns()
    LOGS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    RESULTS["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    RESULTS["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short",
                                        "HEAD"], capture_output=True, text=True).stdout.strip()
    failed = 0
    try:
        for n in STEPS:
            try:
                r = run_step(n)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                r = {"connections": n, "error": f"{type(e).__name__}: {e}", "ok": False}
            RESULTS["steps"].append(r)
            save()
            log(f"scale: {n:,}: {'ok' if r.get('ok') else 'FAILED'}")
            if not r.get("ok"):
                failed = 1
                break
    finally:
        bench.PROCS.stop_all()
        save()
    print("\n".join(table()))
    return failed


if __name__ == "__main__":
    sys.exit(main())
