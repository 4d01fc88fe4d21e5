#!/usr/bin/env python3
# Goal of this test: hours of mixed load leave the server exact (accepted = closed + lost + open at every sample, 0 echo mismatches, no unexpected client failure) and flat (heap in use and fds at the end's quiet point no higher than at the warm-up's).
"""make soak (issue 14, section 5): bin/echo-server with workers=2, /metrics and short
timeouts, under bin/load-client's mixed scenario (echo, close, half-close, reset, idle,
silent, crash) at RATE new connections per second and about 2,000 concurrent, for
SOAK_SECONDS of load, in a network namespace of its own (root).

Phases:  warm-up (mixed load)  burst (idle, 1.5 x the concurrency)  quiet point A
         main (mixed load, in pieces)  quiet point B  drain (SIGTERM, exit 0)
A quiet point: the load stopped, the server's counters lines say open 0, then two
census intervals (the census and the fd accounting run on that period), then fds of each
process, heap in use of each worker (heap_kb of its counters line, mallinfo2, with
glibc's per-thread cache off: see SERVER_ENV), RSS.

Every SAMPLE seconds (through every phase) a row goes to build/soak/series.csv (COLUMNS) and, at the end, build/soak/series.png (gnuplot) and build/soak/summary.txt.

Pass/fail:
  - the identity accepted = closed (every reason) + lost + open exact at every sample,
    on /metrics (the workers' sum; lost = teardown_connections_lost_total, 0 when the
    server does not have it yet) and on each worker's counters line (SIGUSR1);
  - every client run exits 0: 0 echo mismatches, and no failure but those each scenario
    causes (none for this mix, so the client's implicit failed=0 holds; see EXPECT);
  - at quiet point B against A: heap in use per worker grows by at most HEAP_BOUND_KB,
    fds per process by at most FD_BOUND (reasons beside the constants), and CLOSE_WAIT
    on the port and fd_unaccounted are 0 at both;
  - the server drains and exits 0; on the ASan build (SOAK_ASAN=1) no sanitizer report
    in any process's stderr, and LeakSanitizer seen to check the supervisor and each
    worker at exit (heap_kb is 0 there: ASan's allocator is not the one mallinfo2 reads).
Slopes (least squares over the main phase) are reported, not asserted.

Environment: SOAK_SECONDS (load seconds, default 600), SOAK_ASAN=1 (build/asan/bin/*,
results in build/soak-asan/), SOAK_RATE (new connections/s, default 300).
Everything started here is stopped on the way out, the namespace deleted, also on failure
or Ctrl-C. Exit status: 0 pass, 1 fail, 3 could not run (not root, no `ip`)."""
import csv
import ctypes
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import promtext  # noqa: E402  (the strict /metrics parser of the integration tests)

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
ASAN = os.environ.get("SOAK_ASAN", "0") not in ("", "0", "no")
RATE = int(os.environ.get("SOAK_RATE", "300"))
OUT = REPO / "build" / ("soak-asan" if ASAN else "soak")
BIN = REPO / ("build/asan/bin" if ASAN else "bin")
OBSERVER = REPO / "bin" / "load-client"  # `states`: the plain build, whichever is soaked
SAMPLE = 10.0  # seconds between rows of series.csv

# The server: short deadlines so that the silent and crash connections are closed (reason
# heartbeat) within seconds, a census twice a second so that the quiet points come soon.
CENSUS_S = 0.5
SERVER_SETS = {"workers": "2", "metrics_listen": "127.0.0.1:0", "heartbeat_timeout": "3s",
               "fin_timeout": "3s", "write_timeout": "3s", "census_interval": "500ms",
               "close_wait_alarm": "2s", "backlog": "4096"}

# The load. In a mix every scenario ends on its own: echo, close, half-close, reset and
# crash after MESSAGES echoes (milliseconds), idle after HOLD (a message every second),
# silent when the server's heartbeat closes it (3 s). Concurrency by Little's law:
# RATE x (0.25 x 25 s + 0.05 x 3 s) = about 1,900 at 300/s; CONNECTIONS caps the slots
# above that so the rate, not the cap, sets the load.
MIX = {"echo": 25, "close": 15, "half-close": 15, "reset": 10, "idle": 25, "silent": 5,
       "crash": 5}
HOLD_S, MESSAGES, SIZE, CONNECTIONS = 25, 5, 256, 2500
# Failures each scenario causes: none. silent connections are closed by the server's
# heartbeat, which the client counts as closed_by_server, not as a failure; crash
# connections end without a reply to wait for. So the client's implicit failed=0 and
# echo_mismatch=0 stand, written out here to show they are meant.
EXPECT = ["failed=0", "echo_mismatch=0"]
# The warm-up ends with a burst of idle connections, 1.5 x the mix's concurrency, so that
# what is sized to the peak (libevent's fd map and epoll event array, the watchdog's fd
# scan array) reaches its high-water mark before quiet point A, not during the main phase.
BURST = 3000
# Heap in use at B may exceed A by this much per worker: arrays sized by timing, not by
# the connections served. libevent's epoll event array doubles when one epoll_wait fills
# it (up to 4,096 events x 12 B = 48 KiB) and its changelist grows with the fds changed
# in one loop pass; how many events one pass finds depends on scheduling (a busy shared
# machine queues more), so the main phase can outgrow the warm-up's. Measured with an
# LD_PRELOAD counter of live bytes: 0 to 13 KiB of such growth between quiet points, the
# number of live blocks unchanged. A leak of one connection (about 0.6 KiB of heap) in
# 1,000 exceeds the bound after about 110,000 connections per worker (12 minutes at
# 300/s on 2 workers).
HEAP_BOUND_KB = 64
# heap_kb is mallinfo2's uordblks + hblkhd, and mallinfo2 counts the chunks glibc's
# per-thread cache keeps (up to 7 free chunks per size class below 1 KiB) as in use: with
# it, heap_kb at the quiet points grew about 20 KiB per 20 s of load while the live bytes
# stayed constant, up to a ceiling of about 230 KiB. Without the cache heap_kb is the
# bytes the server holds.
SERVER_ENV = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}
# At a quiet point every connection and every scrape is closed: the fds left are the
# process's own (listeners, event loop, reserve fd, census socket, /proc handles, log),
# opened at start. Any more is a leak.
FD_BOUND = 0
CRASH_PER_ADDRESS = 25000  # crash ports are single-use per source address and run
TIME_WAIT_S = 60  # Linux's TCP_TIMEWAIT_LEN
CLONE_NEWNET = 0x40000000
COUNTERS_RE = re.compile(rb"^\S+ echo-server\[(\d+)\] info: counters (\{.*\})\s*$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
REASONS = ("eof", "reset", "timeout", "heartbeat", "write-timeout", "fin-timeout",
           "overload", "shutdown", "error")


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


class Abort(Exception):
    """SIGTERM: stop like Ctrl-C."""


class SoakError(Exception):
    """A condition the soak could not reach (the run stops, the summary says why)."""


# ----------------------------------------------------------------- namespace and procs

def setns_self(name):
    """Moves this (single-threaded) process into network namespace `name`: every process
    it starts afterwards and every socket it opens is there too."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


def sysctl_read(key):
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().split()


def sysctl_write(key, value):
    """Inside the soak's namespace only: /proc/sys/net is the writer's network namespace."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(value))


def proc_tree(pid):
    """pid and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def stop_pid(pid, sig=signal.SIGTERM):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def slope_per_hour(points):
    """Least-squares slope of (t seconds, value) points, per hour; None under 3 points."""
    pts = [(t, v) for t, v in points if isinstance(v, (int, float))]
    if len(pts) < 3:
        return None
    mt = sum(t for t, _ in pts) / len(pts)
    mv = sum(v for _, v in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return None if den == 0 else 3600 * sum((t - mt) * (v - mv) for t, v in pts) / den


def hist_delta_quantile(prev, cur, q):
    """The q-quantile (upper bucket bound, seconds) of a histogram's observations between
    two scrapes, from its cumulative buckets {le: count}; None when nothing was observed."""
    les = sorted(cur, key=float)
    total = cur[les[-1]] - prev.get(les[-1], 0)
    if total <= 0:
        return None
    for le in les:
        if cur[le] - prev.get(le, 0) >= q * total:
            return float(le)
    return float(les[-1])


# ------------------------------------------------------------------------------ soak

COLUMNS = ["t_s", "phase", "parent_rss_kb", "parent_fds", "w0_rss_kb", "w0_heap_kb",
           "w0_fds", "w1_rss_kb", "w1_heap_kb", "w1_fds", "client_rss_kb", "client_fds",
           "open", "accepted", "closed", "lost", "identity_diff", "worker_identity_diff",
           "close_wait", "server_established", "client_established", "time_wait",
           "fd_unaccounted", "log_dropped", "loop_lag_max_ms", "loop_lag_p99_ms"]


class Soak:
    def __init__(self):
        self.ns = f"tdsoak{os.getpid()}"
        self.ns_made = False
        self.home_ns = None
        self.server = self.client = None
        self.workers = []
        self.port = self.mport = None
        self.rows, self.failures, self.notes, self.runs, self.quiet = [], [], [], [], {}
        self.t0 = time.monotonic()
        self.next_sample = self.t0
        self.phase = "start"
        self.lag_prev = {}
        self.missing_lines = 0
        self.log = OUT / "server.log"

    # ---- set-up and tear-down

    def setup_netns(self):
        subprocess.run(["ip", "netns", "add", self.ns], check=True, capture_output=True)
        self.ns_made = True
        self.home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        setns_self(self.ns)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        # The kernel's TIME_WAIT table: its per-namespace limit must hold the run's
        # TIME_WAIT (an overflow would destroy sockets early and hide the budget's use).
        sysctl_write("net.ipv4.tcp_max_tw_buckets", 262144)
        lo, hi = map(int, sysctl_read("net.ipv4.ip_local_port_range"))
        self.ports_per_source = hi - lo + 1
        log(f"namespace {self.ns}: ip_local_port_range {lo}-{hi}, tcp_max_tw_buckets "
            f"{sysctl_read('net.ipv4.tcp_max_tw_buckets')[0]}, somaxconn "
            f"{sysctl_read('net.core.somaxconn')[0]}")

    def cleanup(self):
        for proc in (self.client, self.server):
            if proc is not None and proc.poll() is None:
                stop_pid(proc.pid)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    for pid in proc_tree(proc.pid):
                        stop_pid(pid, signal.SIGKILL)
                    proc.wait()
        for pid in self.workers:  # a worker that outlived its parent
            if os.path.exists(f"/proc/{pid}"):
                stop_pid(pid, signal.SIGKILL)
        if self.home_ns is not None:
            ctypes.CDLL(None, use_errno=True).setns(self.home_ns, CLONE_NEWNET)
            os.close(self.home_ns)
        if self.ns_made:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            if self.ns in left.stdout.split():
                log(f"namespace {self.ns} was not deleted: ip netns del {self.ns}")

    def env(self):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    def server_env(self):
        env = self.env()
        env.update(SERVER_ENV)
        if ASAN:  # the leak check's tracer logs "Attached to thread PID": proof it ran
            env["ASAN_OPTIONS"] += ":verbosity=2"
        return env

    def start_server(self):
        cmd = [str(BIN / "echo-server"), "--listen", "127.0.0.1:0", "--port-file",
               str(OUT / "port"), "--metrics-port-file", str(OUT / "metrics-port")]
        for k, v in SERVER_SETS.items():
            cmd += ["--set", f"{k}={v}"]
        for f in ("port", "metrics-port"):  # an earlier run's would be read as this one's
            (OUT / f).unlink(missing_ok=True)
        with open(self.log, "wb") as err:
            self.server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=err,
                                           env=self.server_env(), start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.port = int((OUT / "port").read_text())
                self.mport = int((OUT / "metrics-port").read_text())
                self.workers = sorted(proc_tree(self.server.pid)[1:])
                if len(self.workers) == 2 and self.port and self.mport:
                    break
            except (OSError, ValueError):
                pass
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise SoakError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        log(f"server {self.server.pid}, workers {self.workers}, port {self.port}, "
            f"metrics {self.mport}: {' '.join(cmd[1:])}")

    def stop_server(self):
        """SIGTERM: the graceful drain, exit 0; the exit's counters lines keep the identity."""
        off = self.log.stat().st_size
        stop_pid(self.server.pid)
        try:
            rc = self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.failures.append("the server did not exit within 60 s of SIGTERM")
            return
        if rc != 0:
            self.failures.append(f"the server exited with status {rc} after SIGTERM")
        last = self.parse_counters(off)
        for pid, c in last.items():
            diff = c["accepted"] - sum(c["closed"].values()) - c["open"]
            if diff != 0:
                self.failures.append(f"worker {pid}'s exit counters: accepted - closed - open "
                                     f"= {diff}")
        text = self.log.read_text(errors="replace")
        for mark in SANITIZER_MARKS:
            if mark in text:
                self.failures.append(f"sanitizer report in {self.log}: {mark}")
        if ASAN:
            checked = {int(p) for p in re.findall(r"==\d+==Attached to thread (\d+)\.", text)}
            self.lsan_checked = sorted(checked & set([self.server.pid] + self.workers))
            for pid in [self.server.pid] + self.workers:
                if pid not in checked:
                    self.failures.append(f"LeakSanitizer did not check process {pid} at exit")
        self.warn_lines = sum(1 for l in text.splitlines() if " warn: " in l)
        self.error_lines = sum(1 for l in text.splitlines() if " error: " in l)

    # ---- observation

    def parse_counters(self, off):
        """{pid: counters} of the counters lines logged after byte offset off."""
        with open(self.log, "rb") as f:
            f.seek(off)
            data = f.read()
        data = data[:data.rfind(b"\n") + 1]  # whole lines only
        out = {}
        for line in data.splitlines():
            m = COUNTERS_RE.match(line)
            if m:
                out[int(m.group(1))] = json.loads(m.group(2))
        return out

    def counters(self, timeout=10.0):
        """SIGUSR1 (the parent forwards it): one counters line of each worker, {pid: dict}.
        A worker that does not answer in time is left out (counted in the summary)."""
        off = self.log.stat().st_size
        stop_pid(self.server.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            got = self.parse_counters(off)
            if all(p in got for p in self.workers) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.missing_lines += sum(1 for p in self.workers if p not in got)
        return {p: got[p] for p in self.workers if p in got}

    def states(self):
        p = subprocess.run([str(OBSERVER), "states", "--port", str(self.port), "--json"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise SoakError(f"load-client states: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def metrics(self):
        fam = promtext.scrape(self.mport, timeout=30)

        def total(name):
            if name not in fam:
                return None
            v = sum(s[2] for s in fam[name].samples)
            return int(v) if v == int(v) else v
        m = {"accepted": total("teardown_connections_accepted_total"),
             "closed": total("teardown_connections_closed_total"),
             "open": total("teardown_connections_open"),
             "lost": total("teardown_connections_lost_total"),
             "fd_unaccounted": total("teardown_fds_unaccounted"),
             "log_dropped": total("teardown_log_dropped_lines_total")}
        lag = fam.get("teardown_event_loop_lag_seconds")
        m["lag_buckets"] = None
        if lag is not None:
            m["lag_buckets"] = {}
            for name, labels, v in lag.samples:
                if name.endswith("_bucket"):
                    m["lag_buckets"][labels["le"]] = m["lag_buckets"].get(labels["le"], 0) + v
        return m

    def check_workers(self):
        now = sorted(proc_tree(self.server.pid)[1:]) if self.server.poll() is None else []
        if now != self.workers:
            self.failures.append(f"{self.phase}: workers changed {self.workers} -> {now} "
                                 f"(a worker died)")
            self.workers = now

    def sample(self):
        """One row of series.csv: the /proc figures first (before the scrape's own fd)."""
        self.check_workers()
        t = time.monotonic() - self.t0
        row = {"t_s": round(t, 1), "phase": self.phase}
        row["parent_rss_kb"], row["parent_fds"] = (rss_kb(self.server.pid),
                                                   fd_count(self.server.pid))
        for i, pid in enumerate(self.workers[:2]):
            row[f"w{i}_rss_kb"], row[f"w{i}_fds"] = rss_kb(pid), fd_count(pid)
        if self.client is not None and self.client.poll() is None:
            tree = proc_tree(self.client.pid)
            row["client_rss_kb"] = sum(rss_kb(p) or 0 for p in tree)
            row["client_fds"] = sum(fd_count(p) or 0 for p in tree)
        ctr = self.counters()
        for i, pid in enumerate(self.workers[:2]):
            if pid in ctr:
                row[f"w{i}_heap_kb"] = ctr[pid]["heap_kb"]
        row["worker_identity_diff"] = sum(c["accepted"] - sum(c["closed"].values()) - c["open"]
                                          for c in ctr.values())
        self.record_metrics(row, ctr)
        st = self.states()
        row["close_wait"] = st["local"]["states"]["close_wait"]
        row["server_established"] = st["local"]["states"]["established"]
        row["client_established"] = st["remote"]["states"]["established"]
        row["time_wait"] = st["remote"]["states"]["time_wait"]
        for k in COLUMNS:
            row.setdefault(k, "n/a")
        self.rows.append(row)
        self.check_row(row)
        self.write_csv()
        return row, ctr

    def record_metrics(self, row, ctr):
        m = self.metrics()
        row["open"], row["accepted"], row["closed"] = m["open"], m["accepted"], m["closed"]
        row["lost"] = m["lost"] if m["lost"] is not None else "n/a"
        row["identity_diff"] = m["accepted"] - m["closed"] - (m["lost"] or 0) - m["open"]
        row["fd_unaccounted"] = m["fd_unaccounted"]
        if m["log_dropped"] is not None:
            row["log_dropped"] = m["log_dropped"]
        elif ctr and all("log_dropped" in c for c in ctr.values()):
            row["log_dropped"] = sum(c["log_dropped"] for c in ctr.values())
        if ctr and all("loop_lag_max_us" in c for c in ctr.values()):
            row["loop_lag_max_ms"] = max(c["loop_lag_max_us"] for c in ctr.values()) / 1000
        if m["lag_buckets"]:
            q = hist_delta_quantile(self.lag_prev, m["lag_buckets"], 0.99)
            row["loop_lag_p99_ms"] = "n/a" if q is None else round(q * 1000, 3)
            self.lag_prev = m["lag_buckets"]

    def check_row(self, row):
        for key in ("identity_diff", "worker_identity_diff"):
            if row[key] != 0:
                self.failures.append(f"t={row['t_s']} s ({row['phase']}): {key} = {row[key]} "
                                     f"(accepted {row['accepted']}, closed {row['closed']}, "
                                     f"lost {row['lost']}, open {row['open']})")

    def tick(self):
        """Samples when the next row is due; called from every waiting loop."""
        if time.monotonic() >= self.next_sample:
            self.sample()
            self.next_sample += SAMPLE
            while self.next_sample < time.monotonic():
                self.next_sample += SAMPLE

    def wait_for(self, cond, timeout, what):
        """Polls cond() (sampling on schedule) until true; SoakError after timeout s."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise SoakError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.tick()
            time.sleep(0.1)

    def write_csv(self):
        with open(OUT / "series.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(self.rows)

    # ---- load

    def sources(self):
        """--sources: enough addresses that the TIME_WAIT the run leaves (every connection
        the client closes, for TIME_WAIT_S, plus the burst) fills at most a quarter of
        each address's ports."""
        tw_share = (MIX["echo"] + MIX["close"] + MIX["half-close"] + MIX["idle"]) / sum(
            MIX.values())
        tw = RATE * tw_share * TIME_WAIT_S + BURST
        n = max(2, math.ceil(tw / (self.ports_per_source // 4)))
        return f"127.0.0.2-127.0.0.{1 + n}", n, tw

    def client_args(self, seconds, crash_source):
        srcs, _, _ = self.sources()
        args = ["--server", f"127.0.0.1:{self.port}", "--connections", CONNECTIONS,
                "--rate", f"{RATE}/s", "--duration", f"{seconds}s", "--scenario", "mixed",
                "--mix", ",".join(f"{k}={v}" for k, v in MIX.items()), "--messages",
                MESSAGES, "--size", SIZE, "--hold", f"{HOLD_S}s", "--heartbeat", "1s",
                "--connect-timeout", "5s", "--reply-timeout", "5s", "--sources", srcs,
                "--crash-source", crash_source, "--settle", "1s", "--json", "--quiet"]
        for e in EXPECT:
            args += ["--expect", e]
        return args

    def burst_args(self):
        srcs, _, _ = self.sources()
        return ["--server", f"127.0.0.1:{self.port}", "--connections", BURST, "--rate",
                "1500/s", "--scenario", "idle", "--hold", "5s", "--heartbeat", "1s",
                "--connect-timeout", "5s", "--reply-timeout", "5s", "--sources", srcs,
                "--settle", "0", "--json", "--quiet", "--expect", f"established={BURST}"]

    def run_client(self, tag, args):
        """One load-client run to its end, sampling meanwhile; its JSON kept."""
        out, err = OUT / f"client-{tag}.json", OUT / f"client-{tag}.err"
        cmd = [str(BIN / "load-client")] + [str(a) for a in args]
        (OUT / f"client-{tag}.cmd").write_text(" ".join(cmd) + "\n")
        with open(out, "wb") as o, open(err, "wb") as e:
            self.client = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                           env=self.env(), start_new_session=True)
        self.wait_for(lambda: self.client.poll() is not None,
                      float(args[args.index("--duration") + 1][:-1]) + 120
                      if "--duration" in args else 120, f"load-client run {tag}")
        rc = self.client.returncode
        self.client = None
        text = err.read_text(errors="replace")
        for mark in SANITIZER_MARKS:
            if mark in text:
                self.failures.append(f"sanitizer report in {err}: {mark}")
        try:
            doc = json.loads(out.read_text())
        except ValueError:
            doc = None
        self.runs.append((tag, rc, doc))
        if rc != 0 or doc is None:
            bad = [e["expect"] + f" (observed {e.get('observed')})" for e in
                   (doc or {}).get("expect", []) if e["result"] != "ok"]
            self.failures.append(f"load-client {tag} exited {rc}: {bad or text[-500:]}")
        return doc

    def quiet_point(self, name):
        """Load stopped: open 0 on every worker (their counters lines: exact, not a census
        old), then two census intervals so that a census and the fd accounting ran with
        nothing open; then fds, heap in use, RSS, CLOSE_WAIT, fd_unaccounted."""
        self.phase = f"quiet-{name}"
        self.wait_for(lambda: (lambda c: len(c) == len(self.workers) and
                               all(v["open"] == 0 for v in c.values()))(self.counters()),
                      60, f"open 0 on every worker at quiet point {name}")
        time.sleep(2 * CENSUS_S)  # an interval to let pass, not a condition to poll
        fds = {"parent": fd_count(self.server.pid)}
        fds.update({f"w{i}": fd_count(p) for i, p in enumerate(self.workers)})
        row, ctr = self.sample()
        q = {"fds": fds, "t_s": row["t_s"], "close_wait": row["close_wait"],
             "fd_unaccounted": row["fd_unaccounted"], "open": row["open"]}
        for i, p in enumerate(self.workers):
            q[f"w{i}_heap_kb"] = ctr.get(p, {}).get("heap_kb")
            q[f"w{i}_rss_kb"] = rss_kb(p)
        self.quiet[name] = q
        log(f"quiet point {name} at {row['t_s']:.0f} s: {q}")
        for key in ("close_wait", "fd_unaccounted", "open"):
            if q[key] != 0:
                self.failures.append(f"quiet point {name}: {key} = {q[key]}, not 0")

    def load(self):
        warm = min(120, max(20, SECONDS // 5))
        main = max(10, SECONDS - warm)
        crash_rate = RATE * MIX["crash"] / sum(MIX.values())
        piece_max = int(CRASH_PER_ADDRESS / crash_rate)
        pieces = math.ceil(main / piece_max)
        srcs, n, tw = self.sources()
        log(f"{SECONDS} s of load: warm-up {warm} s, main {main} s in {pieces} piece(s); "
            f"{RATE}/s, sources {srcs} ({n}: {tw:.0f} TIME_WAIT expected, "
            f"{self.ports_per_source} ports each), crash sources 127.0.1.1-127.0.1.{1 + pieces}")
        self.plan = {"warm": warm, "main": main, "pieces": pieces, "sources": n}
        self.phase = "warm-up"
        self.run_client("warmup", self.client_args(warm, "127.0.1.1"))
        self.phase = "burst"
        self.run_client("burst", self.burst_args())
        self.quiet_point("A")
        for i in range(pieces):
            self.phase = "main"
            secs = round(main / pieces)
            self.run_client(f"main{i + 1}", self.client_args(secs, f"127.0.1.{2 + i}"))
        self.quiet_point("B")
        self.phase = "drain"

    # ---- verdict and report

    def compare_quiet(self):
        """Quiet point B against A: heap per worker, fds per process."""
        a, b = self.quiet.get("A"), self.quiet.get("B")
        if not a or not b:
            return []
        lines = []
        for i in range(len(self.workers)):
            ha, hb = a.get(f"w{i}_heap_kb"), b.get(f"w{i}_heap_kb")
            if ASAN:
                lines.append((f"heap w{i} KiB", ha, hb, "n/a", "n/a (ASan's allocator; "
                              "LeakSanitizer checks)"))
            elif ha is None or hb is None:
                self.failures.append(f"heap of w{i} not read at a quiet point")
            else:
                ok = hb - ha <= HEAP_BOUND_KB
                lines.append((f"heap w{i} KiB", ha, hb, hb - ha,
                              f"<= {HEAP_BOUND_KB}: {'ok' if ok else 'FAILED'}"))
                if not ok:
                    self.failures.append(f"heap of w{i} grew {hb - ha} KiB between the quiet "
                                         f"points (bound {HEAP_BOUND_KB})")
        for proc, fa in a["fds"].items():
            fb = b["fds"].get(proc)
            ok = fa is not None and fb is not None and fb - fa <= FD_BOUND
            lines.append((f"fds {proc}", fa, fb, None if fb is None or fa is None else fb - fa,
                          f"<= {FD_BOUND}: {'ok' if ok else 'FAILED'}"))
            if not ok:
                self.failures.append(f"fds of {proc}: {fa} at A, {fb} at B (bound +{FD_BOUND})")
        for i in range(len(self.workers)):
            ra, rb = a.get(f"w{i}_rss_kb"), b.get(f"w{i}_rss_kb")
            lines.append((f"RSS w{i} KiB", ra, rb, None if ra is None or rb is None else rb - ra,
                          "reported"))
        return lines

    def totals(self):
        t = {"attempted": 0, "established": 0, "failed": 0, "echo_mismatch": 0,
             "closed_by_server": 0, "cancelled": 0, "messages": 0}
        by, crashed, kern = {}, 0, {}
        for tag, rc, doc in self.runs:
            if doc is None:
                continue
            for k in t:
                t[k] += doc["counts"].get(k, 0)
            for k, v in doc["by_scenario"].items():
                by[k] = by.get(k, 0) + v
            crashed += doc.get("dead_peers", {}).get("crash", {}).get("count", 0)
            for k, v in (doc.get("kernel", {}).get("delta") or {}).items():
                kern[k] = kern.get(k, 0) + v
        return t, by, crashed, kern

    def series_max(self, key, phase=None):
        vals = [r[key] for r in self.rows if isinstance(r[key], (int, float)) and
                (phase is None or r["phase"] == phase)]
        return max(vals) if vals else "n/a"

    def slopes(self):
        """Over the main phase once its load is steady: after HOLD_S (idle connections
        held that long) and one more sample, so the ramp from 0 is left out."""
        out = []
        main = [r for r in self.rows if r["phase"] == "main"]
        main = [r for r in main if r["t_s"] >= main[0]["t_s"] + HOLD_S + SAMPLE] if main else []
        for key in ("w0_heap_kb", "w1_heap_kb", "w0_rss_kb", "w1_rss_kb", "parent_rss_kb",
                    "w0_fds", "w1_fds", "open", "close_wait"):
            s = slope_per_hour([(r["t_s"], r[key]) for r in main])
            out.append((key, "n/a" if s is None else f"{s:+.1f}/h"))
        return out

    def summary(self):
        t, by, crashed, kern = self.totals()
        last = self.rows[-1] if self.rows else {}
        exact = sum(1 for r in self.rows if r["identity_diff"] == 0 and
                    r["worker_identity_diff"] == 0)
        plan = getattr(self, "plan", {})
        out = [f"soak: {SECONDS} s of load ({'ASan build' if ASAN else 'plain build'}): "
               f"warm-up {plan.get('warm')} s + burst of {BURST} idle, main {plan.get('main')} s "
               f"in {plan.get('pieces')} piece(s); {RATE} new connections/s, mix "
               f"{','.join(f'{k}={v}' for k, v in MIX.items())}, {plan.get('sources')} sources",
               f"server: workers=2, {' '.join(f'{k}={v}' for k, v in SERVER_SETS.items() if k != 'workers')}",
               "",
               f"client   attempted {t['attempted']}  established {t['established']}  failed "
               f"{t['failed']}  echo mismatch {t['echo_mismatch']}  closed by server "
               f"{t['closed_by_server']}  crashed {crashed}  cancelled {t['cancelled']}  "
               f"messages {t['messages']}",
               f"         by scenario {by}",
               f"         kernel deltas {kern}",
               f"server   accepted {last.get('accepted')}  closed {last.get('closed')}  lost "
               f"{last.get('lost')}  open {last.get('open')}  (last sample)",
               f"identity exact at {exact} of {len(self.rows)} samples (metrics and each "
               f"worker's counters line)",
               f"peaks    open {self.series_max('open')}  client established "
               f"{self.series_max('client_established', 'main')} (main)  CLOSE_WAIT "
               f"{self.series_max('close_wait')}  TIME_WAIT {self.series_max('time_wait')}  "
               f"fd_unaccounted {self.series_max('fd_unaccounted')}  log_dropped "
               f"{self.series_max('log_dropped')}  loop lag max ms "
               f"{self.series_max('loop_lag_max_ms')}  p99 ms {self.series_max('loop_lag_p99_ms')}",
               f"log      {getattr(self, 'warn_lines', 'n/a')} warn lines, "
               f"{getattr(self, 'error_lines', 'n/a')} error lines; counters lines missing "
               f"{self.missing_lines}" + (f"; LeakSanitizer ran at the exit of "
                                           f"{getattr(self, 'lsan_checked', [])} (supervisor "
                                           f"and workers)" if ASAN else ""),
               "",
               f"{'quiet points':<16}{'A (warm-up)':>12}{'B (end)':>12}{'growth':>10}  bound"]
        for name, a, b, d, verdict in self.compare_quiet():
            out.append(f"{name:<16}{str(a):>12}{str(b):>12}{str(d):>10}  {verdict}")
        out.append(f"bounds: heap +{HEAP_BOUND_KB} KiB per worker (libevent's arrays sized by "
                   f"the events of one loop pass; glibc's tcache off), fds +{FD_BOUND} "
                   f"(every connection closed: only the process's own fds are left)")
        out.append("slopes over the main phase (reported, not asserted): " +
                   "  ".join(f"{k} {v}" for k, v in self.slopes()))
        out.append("")
        out.append("PASS" if not self.failures else "FAIL:\n  " + "\n  ".join(self.failures))
        return "\n".join(out)

    def plot(self):
        if shutil.which("gnuplot") is None:
            log("gnuplot not found: no series.png (series.csv is there)")
            return
        csvf = OUT / "series.csv"

        def panel(ylabel, cols, y2=()):
            # A column without a number (n/a: the server does not have it yet) would stop
            # gnuplot ("all points undefined").
            cols, y2 = [[c for c in cs if any(isinstance(r.get(c), (int, float)) and
                                              not isinstance(r.get(c), bool)
                                              for r in self.rows)] for cs in (cols, y2)]
            plots = [f"'{csvf}' using 't_s':'{c}' with linespoints title '{c}'" for c in cols]
            plots += [f"'{csvf}' using 't_s':'{c}' axes x1y2 with linespoints title '{c} (right)'"
                      for c in y2]
            return f"set ylabel '{ylabel}'\n" + ("set y2tics\n" if y2 else "unset y2tics\n") + \
                "plot " + ", \\\n     ".join(plots) + "\n"
        script = (f"set terminal pngcairo noenhanced size 1200,1400\nset output '{OUT / 'series.png'}'\n"
                  "set datafile separator ','\nset datafile missing 'n/a'\n"
                  "set key outside right\nset xlabel 'seconds'\n"
                  f"set multiplot layout 5,1 title 'make soak: {SECONDS} s of load at "
                  f"{RATE}/s, workers=2{', ASan' if ASAN else ''}'\n" +
                  panel("heap KiB", ["w0_heap_kb", "w1_heap_kb"]) +
                  panel("RSS KiB", ["parent_rss_kb", "w0_rss_kb", "w1_rss_kb"]) +
                  panel("fds", ["parent_fds", "w0_fds", "w1_fds", "fd_unaccounted"]) +
                  panel("sockets", ["open", "client_established", "close_wait"], ["time_wait"]) +
                  panel("diff / ms / lines", ["identity_diff", "worker_identity_diff",
                                              "loop_lag_max_ms", "loop_lag_p99_ms"],
                        ["log_dropped"]) +
                  "unset multiplot\n")
        (OUT / "series.gp").write_text(script)
        p = subprocess.run(["gnuplot", str(OUT / "series.gp")], capture_output=True, text=True)
        if p.returncode != 0:
            log(f"gnuplot failed: {p.stderr.strip()[-500:]}")


def preflight():
    if os.geteuid() != 0:
        return "needs root (a network namespace, the crash scenario's TCP_REPAIR)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    for b in (BIN / "echo-server", BIN / "load-client", OBSERVER):
        if not b.exists():
            return f"{b} is missing (make all{' asan' if ASAN else ''})"
    return None


def main():
    why = preflight()
    if why:
        print(f"soak: skipped: {why}")
        return 3
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("client-*"):
        old.unlink()

    def on_term(signum, frame):
        raise Abort()
    signal.signal(signal.SIGTERM, on_term)
    # Started in the background by a non-interactive shell, SIGINT is inherited ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    soak = Soak()
    try:
        soak.setup_netns()
        soak.start_server()
        soak.load()
        soak.stop_server()
    except SoakError as e:
        soak.failures.append(str(e))
    except (KeyboardInterrupt, Abort):
        soak.failures.append(f"interrupted in phase {soak.phase}")
    except Exception as e:  # reported in the summary, after the clean-up
        traceback.print_exc()
        soak.failures.append(f"{type(e).__name__} in phase {soak.phase}: {e}")
    finally:
        soak.cleanup()
    soak.write_csv()
    soak.plot()
    text = soak.summary()
    (OUT / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"series: {OUT / 'series.csv'}, plot: {OUT / 'series.png'}, logs: {OUT}")
    return 0 if not soak.failures else 1


if __name__ == "__main__":
    sys.exit(main())
