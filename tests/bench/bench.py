#!/usr/bin/env python3
"""make bench: bin/echo-server against build/bench/epoll-echo (a minimal raw-epoll echo
server, the floor cost of the system calls), measured in the same run (issue 8), and
against the servers a user would pick instead (issue 19; tests/bench/peers.py): ev-echo
(epoll-echo's loop on libevent), bev-echo (the textbook bufferevent server), uv-echo
(libuv), go-echo (Go's net), node-echo (Node.js net), uvloop-echo (Python asyncio on
uvloop), and echo-server itself with its deadlines off. A peer whose toolchain is missing
is skipped with the reason. Server CPU time is every thread's and child's, exited ones
included: each server runs in a cgroup of its own (peers.CpuMeter).

Sections (each one's results go to build/bench/results.json as soon as it is done):
  echo     efficiency: messages per server CPU-second and throughput, server on cpu0, client
           on cpu1 (taskset), every server and peer in BENCH_ROUNDS paired rounds whose order
           rotates; per server the median of its per-round ratios to epoll-echo with a 95 %
           percentile-bootstrap interval (the headline)
  echo_saturated  the same shapes driven by tests/bench/loadgen, which keeps the server busy
  syscalls the system calls each server makes per message at each shape (strace -c over a
           short load-client run): why a bufferevent server costs more
  churn    connect, one echo, close: connections per second, 1 and 2 client processes;
           then every peer in paired rounds: connections per server CPU-second
  memory   every server and peer at 10k idle connections: RSS, anonymous RSS and kernel Slab
           per connection, and the C servers' malloc heap (mallinfo2), reported apart
  scale    10k / 50k / 100k idle connections: time to establish, user memory per connection
           (RSS, anonymous RSS), kernel Slab delta
  close    (a) half-close at 1,000/s: FIN-to-FIN from the client; (b) 10k connections closed
           in one burst: time until the server's last socket is gone, its FIN-to-close
  census   `load-client states` vs `ss` vs parsing /proc/net/tcp over 100k+ sockets
  deadpeer crash detection time against its budget (needs the client's crash scenario)

Environment: BENCH_ROUNDS (paired rounds per echo shape and for the peers' churn, default
15), BENCH_ROUND_SECONDS (seconds per server and round, default 2, at most BENCH_SECONDS),
BENCH_SECONDS (the other sections' seconds per run, default 10), BENCH_ONLY=echo,churn,...
(a subset of the sections), BENCH_PEERS=go-echo,node-echo,... (a subset of the servers
compared with epoll-echo; default all), BENCH_SHAPES=1,3 (a subset of the echo shapes, by
position), BENCH_SYSCALL_SECONDS (the strace runs, default 3),
BENCH_WARMUP (seconds of load on each fresh server before its measured echo run, so a JIT or
a runtime's first allocations are not measured; default 0.5), BENCH_CPU=v2|v1|proc (force
how server CPU time is read: a cgroup v2 or v1 group per server, or /proc/PID/stat),
BENCH_CLIENT=loadgen to drive the headline echo shapes with loadgen too, BENCH_SERVER=path
to measure another echo-server binary (before/after a change), BENCH_VARIANTS=name=path,...
(other echo-server binaries, e.g. built from a branch that tries a change, run as contenders
echo-server@name in the same paired echo rounds and reported against echo-server).

Every process started here is stopped on the way out, also on failure or Ctrl-C."""
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peers

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "bench"
LOGS = OUT / "logs"
SERVER = Path(os.environ.get("BENCH_SERVER", REPO / "bin" / "echo-server"))
CLIENT = REPO / "bin" / "load-client"
EPOLL = OUT / "epoll-echo"
BEV = OUT / "bev-echo"
EVECHO = OUT / "ev-echo"
LOADGEN = OUT / "loadgen"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "15")))
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", min(2.0, SECONDS)))
PEER_FILTER = [s for s in os.environ.get("BENCH_PEERS", "").split(",") if s]
WARMUP = float(os.environ.get("BENCH_WARMUP", "0.5"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]


def parse_variants(text):
    """BENCH_VARIANTS: name=path,... -> {"echo-server@name": Path}; a bad entry ends the
    bench with the reason."""
    out = {}
    for item in (x for x in text.split(",") if x):
        name, sep, path = item.partition("=")
        if not sep or not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SystemExit(f"bench: BENCH_VARIANTS entry {item!r}: want name=path")
        if not os.access(path, os.X_OK):
            raise SystemExit(f"bench: BENCH_VARIANTS {name}: {path} is not an executable")
        out[f"echo-server@{name}"] = Path(path).resolve()
    return out


VARIANTS = parse_variants(os.environ.get("BENCH_VARIANTS", ""))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SERVER_CPU, CLIENT_CPU = "0", "1"
COUNTERS_RE = re.compile(r"echo-server\[(\d+)\] \w+: counters (\{.*\})\s*$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------------------------

def die_with_parent():
    """In a child before exec: SIGKILL when the bench itself dies (even by SIGKILL), so no
    server or client outlives it."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Procs:
    """Every process the bench starts, so all of them are stopped on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, argv, cgroup=None, **kw):
        """cgroup: a peers.CpuGroup the process joins before exec (its CPU time is then
        that group's)."""
        def preexec():
            die_with_parent()
            if cgroup is not None:
                cgroup.join()
        p = subprocess.Popen([str(a) for a in argv], start_new_session=True,
                             preexec_fn=preexec, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def _signal(pid, sig):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, timeout=15.0, extra_pids=()):
        """SIGTERM, then SIGKILL after timeout; extra_pids (workers) get the same."""
        if p.poll() is None:
            self._signal(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(p.pid, signal.SIGKILL)
                p.wait()
        for pid, start in extra_pids:
            if proc_start_time(pid) == start:  # still the same process
                self._signal(pid, signal.SIGKILL)
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p, timeout=5.0)


PROCS = Procs()


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def proc_start_time(pid):
    st = proc_stat(pid)
    return st[19] if st else None


def proc_cpu_seconds(pid):
    """CPU time of pid: the scheduler's own count in ns (/proc/PID/schedstat, CONFIG_SCHED_INFO),
    else utime + stime from /proc/PID/stat, which come in clock ticks (10 ms: +-0.5 % of a
    2.5 s round)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        st = proc_stat(pid)
        return (int(st[11]) + int(st[12])) / CLK_TCK if st else 0.0


def children_of(ppid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and int(st[1]) == ppid:
                kids.append(int(d))
    return kids


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def meminfo_kb(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_times():
    """{cpuN: (busy_ticks, total_ticks)} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *v = line.split()
                v = [int(x) for x in v]
                total = sum(v[:8])
                out[name] = (total - v[3] - v[4], total)
    return out


def core_busy(a, b, cpu):
    (b0, t0), (b1, t1) = a["cpu" + cpu], b["cpu" + cpu]
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def dur(seconds):
    """A duration for load-client, which takes whole numbers with a unit."""
    return f"{round(seconds * 1000)}ms"


def wait_until(cond, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---- servers -----------------------------------------------------------------------------

METER = None  # peers.CpuMeter, made in main() (after the move into the network namespace)
BANNERS = {}  # kind: the first line a peer logged (its versions, Go's GOMAXPROCS)


def server_argv(kind, port_file, sets=()):
    """The command of one server kind on 127.0.0.1, port 0, and its extra environment.
    echo-server gets the backlog every other server has (peers.BACKLOG)."""
    where = ["--listen", "127.0.0.1:0", "--port-file", port_file]
    if kind.startswith("epoll-echo"):
        return [EPOLL] + where, {}
    if kind.startswith("echo-server"):
        argv = [VARIANTS.get(kind, SERVER)] + where + ["--set", f"backlog={peers.BACKLOG}"]
        if kind == "echo-server-nodeadlines":
            sets = tuple(peers.DEADLINES_OFF) + tuple(sets)
        for s in sets:
            argv += ["--set", s]
        return argv, {}
    cmd, env = peers.peer_argv(kind)
    return cmd + where, env


class Server:
    """One echo server (a kind of server_argv) on 127.0.0.1, port 0, in a cgroup of its own
    (METER), stdout and stderr to build/bench/logs."""

    def __init__(self, kind, name, cpu=SERVER_CPU, sets=()):
        self.kind, self.name = kind, name
        self.port_file = Path(tempfile.mkstemp(prefix="bench-port-")[1])
        self.port_file.unlink()
        self.log_path = LOGS / f"{name}.log"
        argv, env = server_argv(kind, self.port_file, sets)
        if cpu is not None:
            argv = ["taskset", "-c", cpu] + argv
        self.log_file = open(self.log_path, "w")
        self.cgroup = METER.new(name) if METER is not None else None
        try:
            self.proc = PROCS.start(argv, cgroup=self.cgroup, stdout=self.log_file,
                                    stderr=subprocess.STDOUT, env=dict(os.environ, **env))
        except BaseException:
            self.log_file.close()
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        self.pid = self.proc.pid
        try:
            wait_until(lambda: self.port_file.exists() or self.proc.poll() is not None, 20,
                       f"{name} to listen")
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-500:]}")
            self.port = int(self.port_file.read_text())
        except BaseException:
            self.stop()
            raise
        self.workers = [(pid, proc_start_time(pid)) for pid in children_of(self.pid)]

    def pids(self):
        return [self.pid] + [pid for pid, _ in self.workers]

    def cpu_seconds(self):
        """Every thread's and child's CPU time, exited ones included: the cgroup's count,
        else utime + stime of each process (/proc/PID/stat counts the whole thread
        group, exited threads too; only exited child processes are lost there)."""
        if self.cgroup is not None:
            return self.cgroup.seconds()
        total = 0.0
        for pid in self.pids():
            st = proc_stat(pid)
            total += (int(st[11]) + int(st[12])) / CLK_TCK if st else 0.0
        return total

    def heap_bytes(self, timeout=10.0):
        """The malloc heap in use (mallinfo2 uordblks + hblkhd) of a C server, summed over
        its serving processes; None for the others (a Go, Node or Python heap is not
        comparable, and they have no such report)."""
        if self.kind.startswith("echo-server"):
            return sum(c["heap_kb"] for c in self.counters().values()) * 1024
        if self.kind not in peers.C_HEAP:
            return None
        size = self.log_path.stat().st_size
        os.kill(self.pid, signal.SIGUSR1)
        found = []

        def scan():
            with open(self.log_path) as f:
                f.seek(size)
                for line in f:
                    if line.startswith("heap {"):
                        h = json.loads(line[5:])
                        found.append(h["uordblks"] + h["hblkhd"])
            return found
        wait_until(scan, timeout, f"the heap report of {self.name}", interval=0.005)
        return found[-1]

    def rss_kb(self):
        return sum(proc_status_kb(pid, "VmRSS") for pid in self.pids())

    def anon_kb(self):
        return sum(proc_status_kb(pid, "RssAnon") for pid in self.pids())

    def counters(self, timeout=10.0):
        """SIGUSR1 to each serving process; their next `counters {json}` lines, by pid."""
        targets = [pid for pid, _ in self.workers] or [self.pid]
        size = self.log_path.stat().st_size
        for pid in targets:
            os.kill(pid, signal.SIGUSR1)
        found = {}

        def scan():
            with open(self.log_path) as f:
                f.seek(size)
                for line in f:
                    m = COUNTERS_RE.search(line)
                    if m and int(m.group(1)) in targets:
                        found[int(m.group(1))] = json.loads(m.group(2))
            return len(found) == len(targets)
        wait_until(scan, timeout, f"counters of {self.name}", interval=0.005)
        return found

    def nfds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def open_conns(self):
        return sum(c["open"] for c in self.counters().values())

    def stop(self):
        try:
            rc = PROCS.stop(self.proc,
                            extra_pids=self.workers if hasattr(self, "workers") else ())
        finally:
            self.log_file.close()
            self.port_file.unlink(missing_ok=True)
            if self.cgroup is not None:
                self.cgroup.remove()
        if self.kind in ("go-echo", "node-echo", "uvloop-echo") and self.kind not in BANNERS:
            with open(self.log_path, errors="replace") as f:
                BANNERS[self.kind] = f.readline().strip()
        return rc


# ---- clients -----------------------------------------------------------------------------

def client_help():
    if not CLIENT.exists():
        return ""
    r = subprocess.run([CLIENT, "--help"], capture_output=True, text=True, timeout=10)
    return r.stdout + r.stderr


def client_has(*words):
    h = client_help()
    return bool(h) and all(w in h for w in words)


def run_client(args, name, cpu=CLIENT_CPU, timeout=300):
    """bin/load-client ... --json; returns (parsed json, wall seconds)."""
    argv = [CLIENT] + [str(a) for a in args] + ["--json", "--quiet"]
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    t0 = time.monotonic()
    with open(LOGS / f"{name}.client.log", "w") as err:
        p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        finally:
            PROCS.stop(p)
    wall = time.monotonic() - t0
    if p.returncode not in (0, 1):
        raise RuntimeError(f"load-client {name} exited {p.returncode}: see {err.name}")
    return json.loads(out), wall


# ---- results -----------------------------------------------------------------------------

RESULTS = {}


def save():
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "results.json.tmp"
    tmp.write_text(json.dumps(RESULTS, indent=2) + "\n")
    tmp.rename(OUT / "results.json")


def conditions():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "server", "common"],
                           capture_output=True, text=True).stdout.strip()
    cpu_source = METER.method if METER is not None else "/proc/PID/stat utime+stime"
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "echo_server": str(SERVER), "cpu_time_from": cpu_source,
            "seconds_per_shape": SECONDS, "rounds": ROUNDS, "round_seconds": ROUND_SECONDS,
            "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU,
            "commit": rev + ("+uncommitted server/common changes" if dirty else ""),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


# ---- 1. echo efficiency ------------------------------------------------------------------

SHAPES = [  # (connections, message bytes, pipeline)
    (1000, 64, 1),
    (1000, 64, 16),
    (100, 4096, 4),
]
if os.environ.get("BENCH_SHAPES"):  # e.g. 1,3: the first and third shape only
    SHAPES = [SHAPES[int(i) - 1] for i in os.environ["BENCH_SHAPES"].split(",")]


def echo_client_kind():
    forced = os.environ.get("BENCH_CLIENT")
    if forced:
        return forced
    if client_has("--pipeline", "--size", "--duration", "echo"):
        return "load-client"
    return "loadgen"


class Sample:
    """Server CPU, client CPU and per-core busy time at one instant."""

    def __init__(self, srv, client_pid):
        self.t = time.monotonic()
        self.srv = srv.cpu_seconds()
        self.cli = proc_cpu_seconds(client_pid) if client_pid else 0.0
        self.cores = cpu_times()
        self.steal = peers.steal_ticks()


def echo_figures(msgs, a, b, client_seconds=None):
    """One run's raw figures: throughput over the client's own measured time when it
    reports one; CPU over the driver's samples (a, b) around it."""
    return {"messages": msgs, "seconds": client_seconds or (b.t - a.t), "wall": b.t - a.t,
            "server_cpu_s": b.srv - a.srv, "client_cpu_s": b.cli - a.cli,
            "server_core": core_busy(a.cores, b.cores, SERVER_CPU) * (b.t - a.t),
            "client_core": core_busy(a.cores, b.cores, CLIENT_CPU) * (b.t - a.t),
            "steal_s": sum(b.steal.get(c, 0) - a.steal.get(c, 0)
                           for c in ("cpu" + SERVER_CPU, "cpu" + CLIENT_CPU)) / CLK_TCK}


def echo_summary(runs):
    """The sum of a server's rounds of one shape."""
    t = {k: sum(r[k] for r in runs) for k in runs[0]}
    msgs, cpu, wall = t["messages"], t["server_cpu_s"], t["wall"]
    return {
        "messages": msgs, "seconds": round(t["seconds"], 3),
        "msgs_per_s": round(msgs / t["seconds"]),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_s_per_million": round(cpu / msgs * 1e6, 3) if msgs else None,
        "msgs_per_server_cpu_s": round(msgs / cpu) if cpu > 0 else None,
        "server_busy": round(cpu / wall, 3),
        "client_busy": round(t["client_cpu_s"] / wall, 3),
        "core_busy": {"server_core": round(t["server_core"] / wall, 3),
                      "client_core": round(t["client_core"] / wall, 3)},
        "steal_s": round(t["steal_s"], 3),
        "rounds": len(runs)}


def echo_loadgen(srv, conns, size, depth, secs):
    argv = ["taskset", "-c", CLIENT_CPU, LOADGEN, "--server", f"127.0.0.1:{srv.port}",
            "--connections", conns, "--size", size, "--pipeline", depth, "--seconds", secs]
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    a = end = None
    try:
        for line in p.stdout:
            if line.startswith("start"):
                a = Sample(srv, p.pid)
            elif line.startswith("end "):
                b = Sample(srv, p.pid)
                end = json.loads(line[4:])
                break
            elif not line.startswith("ready"):
                log(f"  loadgen: {line.rstrip()}")
        p.wait(30)
    finally:
        PROCS.stop(p)
    if a is None or end is None or end["errors"] or end["mismatch"]:
        raise RuntimeError(f"loadgen failed against {srv.name}: {end}")
    return echo_figures(end["messages"], a, b)


def wait_rusage(p, timeout):
    """Waits for p with wait4 (so its CPU time, with its reaped children's, is known);
    returns (returncode, cpu seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            raise RuntimeError(f"{p.args[0]} did not finish in {timeout:.0f}s")
        time.sleep(0.01)


def echo_load_client(srv, conns, size, depth, secs, all_up=True):
    """One load-client echo run. all_up: every connection must have been established (a
    server under strace may accept too slowly for that: its counts stay valid)."""
    argv = ["taskset", "-c", CLIENT_CPU, CLIENT, "--server", f"127.0.0.1:{srv.port}",
            "--scenario", "echo", "--connections", conns, "--size", size, "--pipeline", depth,
            "--messages", 1000000000, "--duration", dur(secs), "--settle", "0",
            "--json", "--quiet"]
    with open(LOGS / f"{srv.name}.client.log", "w") as err:
        p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            a = Sample(srv, p.pid)
            a.cli = 0.0
            out = p.stdout.read()
            b = Sample(srv, 0)
            rc, b.cli = wait_rusage(p, 60)
        finally:
            PROCS.stop(p)
    if rc not in (0, 1):
        raise RuntimeError(f"load-client failed against {srv.name}: see {err.name}")
    res = json.loads(out)
    r = res["counts"]
    if r["failed"] or r["echo_mismatch"] or (all_up and r["established"] < conns):
        raise RuntimeError(f"load-client against {srv.name}: {r}")
    return echo_figures(r["messages"], a, b, res["elapsed_us"] / 1e6)


def echo_rounds():
    """The saturated section: each server's SECONDS per shape is split into rounds of about
    2.5 s (paired_rounds)."""
    return max(1, round(SECONDS / 2.5))


def echo_ratios(mine, base):
    """A contender's ratios to a base server over the same (paired) rounds: of the sums,
    and the median of the per-round ratios with its 95 % bootstrap interval."""
    m, b = echo_summary(mine), echo_summary(base)
    by_round = [(rs["messages"] / rs["server_cpu_s"]) / (re["messages"] / re["server_cpu_s"])
                for rs, re in zip(mine, base)]
    tput = [(rs["messages"] / rs["seconds"]) / (re["messages"] / re["seconds"])
            for rs, re in zip(mine, base)]
    med, lo, hi = peers.bootstrap_median(by_round)
    return {"ratio_efficiency": round(m["msgs_per_server_cpu_s"] / b["msgs_per_server_cpu_s"], 3),
            "ratio_throughput": round(m["msgs_per_s"] / b["msgs_per_s"], 3),
            "ratio_efficiency_by_round": [round(x, 3) for x in by_round],
            "ratio_efficiency_median_round": round(med, 3),
            "ratio_efficiency_ci95": [round(lo, 3), round(hi, 3)],
            "ratio_throughput_median_round": round(statistics.median(tput), 3)}


# Every server compared with epoll-echo, in the order of the tables.
CONTENDERS = ("echo-server", "echo-server-nodeadlines", "ev-echo", "bev-echo", "uv-echo",
              "go-echo", "node-echo", "uvloop-echo")


def contenders(with_variants=False):
    """The contenders that can run here (BENCH_PEERS narrows them), and {kind: why not}
    for the others; BENCH_VARIANTS too when asked (the echo section: a variant is there to
    be compared with echo-server in paired rounds)."""
    kinds, skipped = [], {}
    for k in CONTENDERS + (tuple(VARIANTS) if with_variants else ()):
        asked = k in PEER_FILTER or k in VARIANTS or (VARIANTS and k == "echo-server")
        if PEER_FILTER and not asked:  # a variant is always measured beside echo-server
            continue
        why = peers.peer_missing(k)
        if why:
            skipped[k] = why
        else:
            kinds.append(k)
    return tuple(kinds), skipped


def paired_rounds(key, rounds, kinds, run_one, what):
    """rounds rounds of run_one(kind, round) for every kind, in an order that rotates every
    round (A B C, B C A, C A B, ...), so a noisy neighbour on this shared machine hits all
    alike and round i of every kind can be paired. A run that fails is tried once more; a
    contender that fails twice is dropped ({kind: error} in the second value, no figures);
    epoll-echo failing twice ends the run."""
    runs = {k: [] for k in kinds}
    failed = {}
    for i in range(rounds):
        live = tuple(k for k in kinds if k not in failed)
        order = live[i % len(live):] + live[:i % len(live)]
        for kind in order:
            log(f"{key}: {kind} {what} (round {i + 1}/{rounds})")
            try:
                try:
                    runs[kind].append(run_one(kind, i))
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    log(f"bench: {kind} failed ({e}), once more")
                    runs[kind].append(run_one(kind, i))
            except KeyboardInterrupt:
                raise
            except Exception as e:
                if kind == "epoll-echo":
                    raise
                failed[kind] = f"{type(e).__name__}: {e}"
                log(f"bench: {kind} failed again, dropped from {key}: {e}")
                runs.pop(kind, None)
    return runs, failed


def echo_pair(key, run, rounds, secs, conns, size, depth, contenders=("echo-server",)):
    """epoll-echo and the contenders in paired rounds; figures of one shape, and each
    contender's ratios to epoll-echo (the first contender's also at the top level of the
    shape)."""
    shape = {"connections": conns, "size": size, "pipeline": depth}
    kinds = ("epoll-echo",) + tuple(contenders)

    def one(kind, i):
        srv = Server(kind, f"{key}-{kind}-{conns}x{size}p{depth}")
        try:
            if WARMUP > 0 and run is echo_load_client:  # loadgen warms up by itself
                run(srv, conns, size, depth, WARMUP, all_up=False)
            return run(srv, conns, size, depth, secs)
        finally:
            srv.stop()
    runs, failed = paired_rounds(key, rounds, kinds, one,
                                 f"{conns} x {size} B, pipeline {depth}, {secs:g} s")
    if failed:
        shape["failed"] = failed
    for kind_srv, rs in runs.items():
        shape[kind_srv] = echo_summary(rs)
    shape["ratios"] = {k: echo_ratios(runs[k], runs["epoll-echo"]) for k in contenders
                       if k in runs}
    if contenders[0] in shape["ratios"]:
        shape.update(shape["ratios"][contenders[0]])
    if "ev-echo" in runs and "echo-server" in runs:
        # What echo-server adds on top of libevent's dispatch (ev-echo: the same loop as
        # epoll-echo, on libevent).
        shape["echo_server_vs_ev_echo"] = echo_ratios(runs["echo-server"], runs["ev-echo"])
    if "echo-server" in runs:  # each variant against the echo-server of the same rounds
        vs = {k: echo_ratios(runs[k], runs["echo-server"]) for k in VARIANTS if k in runs}
        if vs:
            shape["variants_vs_echo_server"] = vs
    return shape


def section_echo(kind=None, key="echo"):
    kind = kind or echo_client_kind()
    run = echo_loadgen if kind == "loadgen" else echo_load_client
    if key == "echo":
        # Every server and peer, BENCH_ROUNDS paired rounds of BENCH_ROUND_SECONDS.
        rounds, secs = ROUNDS, ROUND_SECONDS
        kinds, skipped = contenders(with_variants=True)
    else:
        rounds = echo_rounds()
        secs = SECONDS / rounds
        kinds, skipped = ("echo-server",), {}
    res = {"client": kind if kind != "loadgen" else
           "tests/bench/loadgen, a minimal raw-epoll client that keeps the server core busy",
           "rounds": rounds, "seconds_per_round": secs, "servers": list(kinds),
           "peers_skipped": skipped, "shapes": []}
    RESULTS[key] = res
    for conns, size, depth in SHAPES:
        res["shapes"].append(echo_pair(key, run, rounds, secs, conns, size, depth, kinds))
        save()
    if key == "echo_saturated":
        # A/A: epoll-echo against a second epoll-echo, the same way: the noise of a ratio.
        res["noise"] = echo_pair(key, run, rounds, secs, *SHAPES[0],
                                 contenders=("epoll-echo-b",))
        save()


# ---- 1c. system calls per message ------------------------------------------------------------

SYSCALL_SECONDS = float(os.environ.get("BENCH_SYSCALL_SECONDS", "3"))


def strace_counts(path):
    """{syscall: calls} from `strace -c -U calls,name` output."""
    counts = {}
    for line in Path(path).read_text().splitlines():
        v = line.split()
        if len(v) == 2 and v[0].isdigit() and v[1] != "total":
            counts[v[1]] = int(v[0])
    return counts


def traced(pid):
    """Every thread of pid has a tracer (strace -f -p attaches to each one in turn)."""
    def one(status):
        try:
            with open(status) as f:
                return any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in f)
        except FileNotFoundError:
            return True  # the thread has exited
    return all(one(f"/proc/{pid}/task/{t}/status") for t in os.listdir(f"/proc/{pid}/task"))


def syscalls_one(kind, conns, size, depth):
    srv = Server(kind, f"syscalls-{kind}-{conns}x{size}p{depth}")
    out = LOGS / f"syscalls-{kind}-{conns}x{size}p{depth}.strace"
    tracer = None
    try:
        tracer = PROCS.start(["strace", "-f", "-c", "-U", "calls,name", "-o", out, "-p",
                              srv.pid],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: traced(srv.pid) or tracer.poll() is not None, 10,
                   f"strace to attach to {kind}")
        if tracer.poll() is not None:
            raise RuntimeError(f"strace could not attach to {kind} (exit {tracer.returncode})")
        msgs = echo_load_client(srv, conns, size, depth, SYSCALL_SECONDS,
                                all_up=False)["messages"]
        tracer.send_signal(signal.SIGINT)  # detach and write the summary
        tracer.wait(30)
    finally:
        if tracer is not None:
            PROCS.stop(tracer)
        srv.stop()
    counts = strace_counts(out)
    return {"messages": msgs, "calls": counts,
            "per_message": {k: round(v / msgs, 3) for k, v in
                            sorted(counts.items(), key=lambda kv: -kv[1])} if msgs else {},
            "total_per_message": round(sum(counts.values()) / msgs, 3) if msgs else None}


def section_syscalls():
    """Counts only: strace slows every system call, so its times mean nothing here, and the
    messages per call shift a little with the slower pace (more so for a server whose
    threads hand work to each other, like Go's); the kinds of calls do not."""
    kinds, skipped = contenders()
    res = {"tool": f"strace -f -c (every thread) over a {SYSCALL_SECONDS:g} s load-client run "
                   f"per server and shape; the counts include the connection set-up: "
                   f"accept4, epoll_ctl ADD, setsockopt",
           "servers": ["epoll-echo"] + list(kinds), "peers_skipped": skipped, "shapes": []}
    RESULTS["syscalls"] = res
    if shutil.which("strace") is None:
        res["skipped"] = "strace is not installed (make bench-deps)"
        return
    for conns, size, depth in SHAPES:
        shape = {"connections": conns, "size": size, "pipeline": depth}
        for kind in res["servers"]:
            log(f"syscalls: {kind} {conns} x {size} B, pipeline {depth}, "
                f"{SYSCALL_SECONDS:g} s under strace")
            try:
                shape[kind] = syscalls_one(kind, conns, size, depth)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one server failing must not lose the others
                shape[kind] = {"error": f"{type(e).__name__}: {e}"}
                log(f"bench: syscalls of {kind} failed: {e}")
        res["shapes"].append(shape)
        save()


# ---- 2. churn ---------------------------------------------------------------------------

CHURN_SOURCES = "127.0.0.2-127.0.0.41"  # 40 x 28,232 ephemeral ports per server port
CHURN_CONCURRENCY = 100


def churn_seconds():
    return max(2.0, SECONDS / 2)


def ss_timewait():
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True,
                         text=True).stdout
    return out.count("\n")


def churn_one(kind, procs, secs, name, warmup=0.0):
    """One churn run against a fresh server of kind (after warmup seconds of the same
    load, not measured): its figures."""
    srv = Server(kind, name)
    try:
        if warmup > 0:
            run_client(["--server", f"127.0.0.1:{srv.port}", "--scenario", "close",
                        "--connections", CHURN_CONCURRENCY, "--messages", 1,
                        "--duration", dur(warmup), "--sources", CHURN_SOURCES,
                        "--settle", "0"], name + "-warmup")
        c0 = srv.cpu_seconds()
        r, _ = run_client(["--server", f"127.0.0.1:{srv.port}", "--scenario", "close",
                           "--connections", CHURN_CONCURRENCY, "--messages", 1,
                           "--duration", dur(secs), "--procs", procs,
                           "--sources", CHURN_SOURCES, "--settle", "0"], name)
        cpu = srv.cpu_seconds() - c0
    finally:
        srv.stop()
    c = r["counts"]
    n = c["completed"]
    el = r["elapsed_us"] / 1e6
    return {"completed": n, "failed": c["failed"], "conns_per_s": round(n / el),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_us_per_conn": round(cpu / n * 1e6, 2) if n else None,
            "conns_per_server_cpu_s": round(n / cpu) if cpu > 0 else None,
            "failures": r["failures"], "time_wait_after": ss_timewait()}


def churn_peers(res):
    """Every server and peer, BENCH_ROUNDS paired rounds of BENCH_ROUND_SECONDS, one client
    process: connections per server CPU-second, as a ratio to epoll-echo's of the same
    round (median, 95 % bootstrap interval)."""
    kinds, skipped = contenders()
    out = {"rounds": ROUNDS, "seconds_per_round": ROUND_SECONDS, "client_procs": 1,
           "servers": ["epoll-echo"] + list(kinds), "peers_skipped": skipped}
    res["peers"] = out
    runs, failed = paired_rounds(
        "churn", ROUNDS, ("epoll-echo",) + kinds,
        lambda kind, i: churn_one(kind, 1, ROUND_SECONDS, f"churn-{kind}-round", WARMUP),
        f"connect-echo-close, {ROUND_SECONDS:g} s")
    if failed:
        out["failed"] = failed
    base = runs["epoll-echo"]
    for kind, rs in runs.items():
        n, cpu = sum(r["completed"] for r in rs), sum(r["server_cpu_s"] for r in rs)
        row = {"completed": n, "failed": sum(r["failed"] for r in rs),
               "server_cpu_s": round(cpu, 3),
               "server_cpu_us_per_conn": round(cpu / n * 1e6, 2) if n else None,
               "conns_per_server_cpu_s": round(n / cpu) if cpu > 0 else None,
               "conns_per_s": round(statistics.median(r["conns_per_s"] for r in rs))}
        if kind != "epoll-echo":
            by_round = [r["conns_per_server_cpu_s"] / b["conns_per_server_cpu_s"]
                        for r, b in zip(rs, base)
                        if r["conns_per_server_cpu_s"] and b["conns_per_server_cpu_s"]]
            med, lo, hi = peers.bootstrap_median(by_round)
            if med is not None:
                row.update({"ratio_efficiency_by_round": [round(x, 3) for x in by_round],
                            "ratio_efficiency_median_round": round(med, 3),
                            "ratio_efficiency_ci95": [round(lo, 3), round(hi, 3)]})
        out[kind] = row


def section_churn():
    secs = churn_seconds()
    res = {"seconds": secs, "concurrency": CHURN_CONCURRENCY, "sources": CHURN_SOURCES,
           "runs": []}
    RESULTS["churn"] = res
    for procs in (1, 2):
        row = {"procs": procs}
        order = ("epoll-echo", "echo-server") if procs == 1 else ("echo-server", "epoll-echo")
        for kind in order:
            log(f"churn: {kind}, {procs} client process(es), {secs:g} s")
            row[kind] = churn_one(kind, procs, secs, f"churn-{kind}-p{procs}")
        e, s = row["epoll-echo"], row["echo-server"]
        row["ratio_throughput"] = round(s["conns_per_s"] / e["conns_per_s"], 3)
        row["ratio_efficiency"] = round(s["conns_per_server_cpu_s"] /
                                        e["conns_per_server_cpu_s"], 3)
        res["runs"].append(row)
        save()
    churn_peers(res)
    save()
    res["tcp_max_tw_buckets"] = int(Path("/proc/sys/net/ipv4/tcp_max_tw_buckets").read_text())
    res["port_budget"] = (
        f"the client closes first and holds TIME_WAIT; it binds {CHURN_SOURCES} "
        f"(40 addresses x 28,232 ports = 1.13M four-tuples per server port, and every run "
        f"has a fresh server port), far above what {secs:g} s of churn opens; "
        f"TIME_WAIT itself is capped by tcp_max_tw_buckets={res['tcp_max_tw_buckets']} in "
        f"the bench's private network namespace (above it the kernel closes without "
        f"TIME_WAIT), which is why time_wait_after stops there")


# ---- 3. scale, and 5. census speed at 100k -------------------------------------------------

# (connections, echo-server workers, client processes, source addresses)
SCALE = [(10000, 1, 1, "127.0.1.1-127.0.1.10"),
         (50000, 4, 4, "127.0.2.1-127.0.2.20"),
         (100000, 8, 8, "127.0.3.1-127.0.3.40")]


def time_census(port, reps=3):
    """Wall time of three ways to count the sockets of a port; the median of reps."""
    def lc():
        out = subprocess.run([CLIENT, "states", "--port", str(port), "--json"],
                             capture_output=True, text=True, timeout=120).stdout
        d = json.loads(out)
        own_us.append(d["local"]["elapsed_us"] + d["remote"]["elapsed_us"])
        return d["local"]["total"] + d["remote"]["total"]

    def ss():
        out = subprocess.run(["ss", "-tanH", "state", "all", f"( sport = :{port} or "
                              f"dport = :{port} )"], capture_output=True, text=True,
                             timeout=120).stdout
        return out.count("\n")

    def proc_net_tcp():
        hexport = f":{port:04X}"
        n = 0
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split(None, 3)
                if fields[1].endswith(hexport) or fields[2].endswith(hexport):
                    n += 1
        return n

    out, own_us = {}, []
    for name, fn in (("load-client states", lc), ("ss", ss), ("/proc/net/tcp", proc_net_tcp)):
        times, count = [], None
        for _ in range(reps):
            t0 = time.monotonic()
            count = fn()
            times.append(time.monotonic() - t0)
        out[name] = {"sockets": count, "ms": round(statistics.median(times) * 1000, 1)}
    out["load-client states"]["own_census_ms"] = round(statistics.median(own_us) / 1000, 1)
    out["how"] = ("wall time of the whole command (process start included), median of "
                  f"{reps}; load-client states: sock_diag netlink, two dumps (local, remote); "
                  "ss: sock_diag with a port filter; /proc/net/tcp: read and match in Python")
    out["sockets_in_netns"] = ss_total()
    return out


def ss_total():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()
                return int(v[v.index("inuse") + 1]) + int(v[v.index("tw") + 1])
    return None


# The slab caches one loopback connection's two sockets use (the socket, its inode, its file
# and dentry, an epoll item): the part of Slab that other processes on a shared host
# disturb least.
SOCKET_SLABS = ("TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "eventpoll_pwq")


def socket_slab_bytes():
    """Bytes in use in SOCKET_SLABS (active objects x object size, /proc/slabinfo), or
    None where slabinfo cannot be read."""
    try:
        with open("/proc/slabinfo") as f:
            total = 0
            for line in f:
                v = line.split()
                if v and v[0] in SOCKET_SLABS:
                    total += int(v[1]) * int(v[3])
            return total
    except (OSError, ValueError, IndexError):
        return None


def heap_kb(srv):
    """A C server's heap in use (mallinfo2: uordblks + hblkhd; echo-server's counters'
    heap_kb, the others' SIGUSR1 report), summed over the serving processes; None for the
    Go, Node and Python peers."""
    b = srv.heap_bytes()
    return None if b is None else b / 1024


def scale_one(kind, n, workers, procs, sources, census=False, section="scale"):
    name = f"{section}-{kind}-{n}"
    sets = [f"workers={workers}"] if kind.startswith("echo-server") else []
    srv = Server(kind, name, cpu=None, sets=sets)
    cli = None
    try:
        time.sleep(0.3)
        rss0, anon0, slab0 = srv.rss_kb(), srv.anon_kb(), meminfo_kb("Slab")
        heap0, sock0 = heap_kb(srv), socket_slab_bytes()
        unrecl0 = meminfo_kb("SUnreclaim")
        argv = [CLIENT, "--server", f"127.0.0.1:{srv.port}", "--scenario", "idle",
                "--connections", n, "--hold", "10m", "--heartbeat", "20s", "--procs", procs,
                "--sources", sources, "--settle", "0", "--json", "--quiet"]
        t0 = time.monotonic()
        cli_log = open(LOGS / f"{name}.client.log", "w")
        cli = PROCS.start(argv, stdout=subprocess.DEVNULL, stderr=cli_log)
        base_fds = srv.nfds()
        count = (srv.open_conns if kind.startswith("echo-server")
                 else lambda: srv.nfds() - base_fds)
        wait_until(lambda: count() >= n or cli.poll() is not None, 120,
                   f"{n} connections to {kind}", interval=0.05)
        t_est = time.monotonic() - t0
        if cli.poll() is not None:
            raise RuntimeError(f"load-client exited early ({cli.returncode}), see {cli_log.name}")
        time.sleep(1.0)  # let the allocator and the kernel settle
        rss, anon, slab = srv.rss_kb(), srv.anon_kb(), meminfo_kb("Slab")
        heap, sock = heap_kb(srv), socket_slab_bytes()
        unrecl = meminfo_kb("SUnreclaim")
        r = {"connections": n, "workers": workers if kind.startswith("echo-server") else 1,
             "client_procs": procs, "sources": sources,
             "establish_s": round(t_est, 2), "conns_per_s": round(n / t_est),
             "rss_kb_before": rss0, "rss_kb_after": rss,
             "rss_bytes_per_conn": round((rss - rss0) * 1024 / n),
             "anon_bytes_per_conn": round((anon - anon0) * 1024 / n),
             "heap_bytes_per_conn": round((heap - heap0) * 1024 / n) if heap is not None
             else None,
             "slab_bytes_per_conn": round((slab - slab0) * 1024 / n),
             "socket_slab_bytes_per_conn": round((sock - sock0) / n) if sock is not None
             else None,
             "sunreclaim_bytes_per_conn": round((unrecl - unrecl0) * 1024 / n)}
        if census:
            log(f"census: timing three counts at {n} connections")
            r["census"] = time_census(srv.port)
        return r
    finally:
        if cli is not None:
            PROCS.stop(cli, timeout=60)
            cli_log.close()
        srv.stop()


def section_scale():
    res = {"heap": "the heap in use (mallinfo2 uordblks + hblkhd: echo-server's heap_kb "
                   "counter, epoll-echo's SIGUSR1 report) after minus before, summed over "
                   "workers; RSS and anon (RssAnon: heap + mmap) are deltas from "
                   "/proc/PID/status and include what the allocator keeps",
           "slab": "delta of Slab in /proc/meminfo: both ends of each loopback connection "
                   "(client and server socket), plus anything else the host did meanwhile",
           "runs": []}
    RESULTS["scale"] = res
    n, w, p, src = SCALE[0]
    log(f"scale: epoll-echo {n} idle connections")
    res["runs"].append({"server": "epoll-echo", **scale_one("epoll-echo", n, 1, p, src)})
    save()
    for n, w, p, src in SCALE:
        log(f"scale: echo-server {n} idle connections ({w} workers, {p} client procs)")
        res["runs"].append({"server": "echo-server",
                            **scale_one("echo-server", n, w, p, src, census=(n >= 100000))})
        save()
    big = res["runs"][-1]
    if "census" in big:
        RESULTS["census"] = {"connections": big["connections"], **big["census"]}


# ---- 3b. memory per idle connection, every server ------------------------------------------

MEMORY_CONNS, MEMORY_SOURCES = 10000, "127.0.1.1-127.0.1.10"


def section_memory():
    kinds, skipped = contenders()
    res = {"connections": MEMORY_CONNS, "servers": ["epoll-echo"] + list(kinds),
           "peers_skipped": skipped,
           "how": f"{MEMORY_CONNS:,} idle connections (client scenario idle, heartbeat 20 s), "
                  "one server at a time; per connection: the growth of the server's RSS and "
                  "anonymous RSS (/proc/PID/status: what its allocator or runtime keeps, the "
                  "comparable figure), of the kernel's Slab (/proc/meminfo: both ends of "
                  "each loopback connection, and whatever else the host did meanwhile), of "
                  "its socket caches (" + ", ".join(SOCKET_SLABS) + " in /proc/slabinfo: "
                  "less disturbed by the rest of the host; both ends too), and "
                  "for the C servers of the malloc heap in use (mallinfo2 uordblks + "
                  "hblkhd); Go's, Node's and Python's heaps mean other things and are not "
                  "reported",
           "runs": []}
    RESULTS["memory"] = res
    for kind in res["servers"]:
        log(f"memory: {kind}, {MEMORY_CONNS} idle connections")
        try:
            res["runs"].append({"server": kind, **scale_one(kind, MEMORY_CONNS, 1, 1,
                                                            MEMORY_SOURCES, section="memory")})
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one server failing must not lose the others
            res["runs"].append({"server": kind, "error": f"{type(e).__name__}: {e}"})
            log(f"bench: memory of {kind} failed: {e}")
        save()


# ---- 4. close latency ----------------------------------------------------------------------

CLOSE_RATE = 1000
BURST = 10000

BURST_HELPER = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    socks.append(s)
for s in socks:
    s.sendall(b"x")
for s in socks:
    if s.recv(1) != b"x":
        sys.exit(1)
print("ready", flush=True)
sys.stdin.read()
"""


def hist_pct(summary, key):
    h = summary[key]
    return {"count": h["count"], "p50_ms": h["p50_ms"], "p99_ms": h["p99_ms"],
            "p99.9_ms": h["p99.9_ms"], "max_ms": h["max_ms"]}


def close_steady(kind):
    secs = max(2.0, SECONDS / 2)
    srv = Server(kind, f"close-steady-{kind}")
    try:
        r, _ = run_client(["--server", f"127.0.0.1:{srv.port}", "--scenario", "half-close",
                           "--connections", 100, "--rate", CLOSE_RATE, "--messages", 1,
                           "--duration", dur(secs), "--sources", "127.0.4.1-127.0.4.4",
                           "--settle", "0"], f"close-steady-{kind}")
        out = {"completed": r["counts"]["completed"], "failed": r["counts"]["failed"],
               "seconds": secs, "fin_to_fin": hist_pct(r["summary"], "fin_to_fin")}
        if kind == "echo-server":
            out["server_fin_to_close_us"] = list(srv.counters().values())[0]["fin_to_close_us"]
        return out
    finally:
        srv.stop()


def server_sockets(port):
    """Accepted sockets of the port still known to the kernel (sock_diag census)."""
    out = subprocess.run([CLIENT, "states", "--port", str(port), "--json"],
                         capture_output=True, text=True, timeout=60).stdout
    d = json.loads(out)["local"]
    return d["total"] - d["states"]["listen"]


def close_burst(kind):
    srv = Server(kind, f"close-burst-{kind}")  # log_level info: no line per close
    helper = None
    try:
        base_fds = srv.nfds()
        helper = PROCS.start([sys.executable, "-c", BURST_HELPER, srv.port, BURST],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = helper.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"burst helper failed ({helper.poll()})")
        # Accepted by the server, not only by the kernel (the census sees a connection as
        # soon as the handshake ends, before accept()): else the fd count to wait for
        # after the burst would be too low and never be reached.
        wait_until(lambda: server_sockets(srv.port) >= BURST and srv.nfds() >= base_fds + BURST,
                   30, "the burst's connections")
        t0 = time.monotonic()
        helper.kill()  # the kernel closes all its sockets at exit: one burst of FINs
        helper.wait()
        exited = time.monotonic() - t0
        fd_gone = None

        def fds_closed():
            nonlocal fd_gone
            if fd_gone is None and srv.nfds() <= base_fds:
                fd_gone = time.monotonic() - t0

        def all_gone():
            # The fds again once the census says all is gone: the last ones may close
            # while the census runs (some ms), and the fd time must not go missing.
            fds_closed()
            gone = server_sockets(srv.port) == 0
            if gone:
                fds_closed()
            return gone
        wait_until(all_gone, 60, "the server's sockets to be gone", interval=0.001)
        out = {"connections": BURST, "last_socket_gone_ms": round((time.monotonic() - t0) * 1e3, 1),
               "last_fd_closed_ms": round(fd_gone * 1e3, 1) if fd_gone is not None else None,
               "client_exit_ms": round(exited * 1e3, 1)}
        if kind == "echo-server":
            out["server_fin_to_close_us"] = list(srv.counters().values())[0]["fin_to_close_us"]
        return out
    finally:
        if helper is not None:
            PROCS.stop(helper)
        srv.stop()


def section_close():
    res = {"steady": {"rate": CLOSE_RATE, "scenario": "half-close (shutdown(SHUT_WR), read "
                      "to EOF); FIN-to-FIN from the client"},
           "burst": {"how": f"{BURST} connections held by one process that is then killed: "
                     "the kernel sends all their FINs at once; time from the kill until the "
                     "sock_diag census sees no accepted socket on the port"}}
    RESULTS["close"] = res
    for kind in ("epoll-echo", "echo-server"):
        log(f"close: steady half-close at {CLOSE_RATE}/s against {kind}")
        res["steady"][kind] = close_steady(kind)
        save()
    for kind in ("epoll-echo", "echo-server"):
        log(f"close: burst of {BURST} against {kind}")
        res["burst"][kind] = close_burst(kind)
        save()


# ---- 6. dead peers ---------------------------------------------------------------------------

# Every mechanism off but the one under test (as tests/integration/test_deadpeer_detection.py).
DEAD_OFF = {"keepalive": "no", "heartbeat_timeout": "0", "user_timeout": "0",
            "fin_timeout": "0", "write_timeout": "0", "log_level": "debug"}
DEAD_CONNS = 100
# (scenario, mechanism, server settings, budget in s, expected close reason)
DEAD_ROWS = [
    ("crash", "heartbeat 2s", {"heartbeat_timeout": "2s"}, 2.0, "heartbeat"),
    ("crash", "keepalive 2s+2x1s", {"keepalive": "yes", "keepalive_idle": "2s",
                                    "keepalive_interval": "1s", "keepalive_count": "2"},
     4.0, "reset"),
    ("vanish", "heartbeat 2s", {"heartbeat_timeout": "2s"}, 2.0, "heartbeat"),
    ("vanish", "keepalive 2s+2x1s", {"keepalive": "yes", "keepalive_idle": "2s",
                                     "keepalive_interval": "1s", "keepalive_count": "2"},
     4.0, "timeout"),
]
LOG_CLOSE_RE = re.compile(r"^(\S+) echo-server\[\d+\] debug: close peer=\S+ reason=(\S+)")


def log_unix(stamp):
    """The server's log timestamp (UTC, ms) as a Unix time."""
    import datetime
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def server_closes(srv):
    closes = []
    with open(srv.log_path) as f:
        for line in f:
            m = LOG_CLOSE_RE.match(line)
            if m:
                closes.append((log_unix(m.group(1)), m.group(2)))
    return closes


def dead_row(scen, mech, sets, budget, want):
    name = f"deadpeer-{scen}-{mech.split()[0]}"
    srv = Server("echo-server", name, cpu=None, sets=[f"{k}={v}" for k, v in
                                                      dict(DEAD_OFF, **sets).items()])
    cli = None
    try:
        argv = [CLIENT, "--server", f"127.0.0.1:{srv.port}", "--scenario", scen,
                "--connections", DEAD_CONNS, "--messages", 1, "--sources",
                "127.0.6.1-127.0.6.4", "--settle", "0", "--json", "--quiet"]
        if scen == "vanish":
            argv += ["--hold", dur(budget * 3 + 5)]
        cli_log = open(LOGS / f"{name}.client.log", "w")
        cli = PROCS.start(argv, stdout=subprocess.PIPE, stderr=cli_log, text=True)
        wait_until(lambda: len(server_closes(srv)) >= DEAD_CONNS or cli.poll() not in (None, 0),
                   budget * 3 + 10, f"the server to close {DEAD_CONNS} dead peers ({name})",
                   interval=0.1)
        if cli.poll() is None:
            cli.send_signal(signal.SIGTERM)  # vanish: ends the hold (RST, dropped too)
        out, _ = cli.communicate(timeout=30)
        if cli.returncode not in (0, 1):
            raise RuntimeError(f"load-client {scen} exited {cli.returncode}: see {cli_log.name}")
        dead = json.loads(out)["dead_peers"][scen]
        closes = server_closes(srv)
        first, last = dead["first_unix_us"] / 1e6, dead["last_unix_us"] / 1e6
        took = sorted(t - first for t, _ in closes)
        reasons = {}
        for _, r in closes:
            reasons[r] = reasons.get(r, 0) + 1
        return {"scenario": scen, "mechanism": mech, "budget_s": budget, "expected": want,
                "died": dead["count"], "deaths_spread_ms": round((last - first) * 1000, 1),
                "closed": len(closes), "reasons": reasons,
                "detect_first_s": round(took[0], 3), "detect_p50_s": round(
                    statistics.median(took), 3), "detect_max_s": round(took[-1], 3),
                "ratio_max_to_budget": round(took[-1] / budget, 3)}
    finally:
        if cli is not None:
            PROCS.stop(cli)
            cli_log.close()
        srv.stop()


def section_deadpeer():
    if not client_has("crash", "vanish") or "crash, vanish: not yet" in client_help():
        RESULTS["deadpeer"] = {"skipped": "not available yet: bin/load-client has no crash/"
                                          "vanish scenario (its --help says so)"}
        return
    res = {"how": f"{DEAD_CONNS} connections per row, each echoes once then dies (crash: "
                  "TCP_REPAIR close, no FIN or RST; vanish: nftables drops its packets both "
                  "ways); one mechanism on at a time; time from the first death (client's "
                  "clock) to each close in the server's log",
           "rows": []}
    RESULTS["deadpeer"] = res
    for row in DEAD_ROWS:
        log(f"dead peers: {row[0]} against {row[1]}")
        res["rows"].append(dead_row(*row))
        save()


# ---- the table ---------------------------------------------------------------------------

def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def table_echo_saturated(res):
    lines = table_echo(res)
    lines[0] = "1b. " + lines[0][3:]
    if "noise" in res:
        n = res["noise"]
        by_round = " ".join(f"{x:.2f}" for x in n["ratio_efficiency_by_round"])
        lines.append(f"   noise (A/A: epoll-echo against itself, {n['connections']} x {n['size']} B,"
                     f" pipe {n['pipeline']}): efficiency ratio {n['ratio_efficiency']:.3f}, "
                     f"by round {by_round}")
    return lines


def table_echo(res):
    lines = [f"1. echo efficiency (client: {res['client']}; server on cpu{SERVER_CPU}, "
             f"client on cpu{CLIENT_CPU}; {res['rounds']} paired round(s) of "
             f"{res['seconds_per_round']:g} s per server and shape, order rotating)",
             "   ratio: messages per server CPU-second over epoll-echo's in the same round, "
             "the median of the rounds [95 % bootstrap interval]; tput: the same for msgs/s",
             f"   {'shape':<22}{'server':<25}{'msgs/s':>10}{'CPU-s/M':>9}{'msgs/CPU-s':>12}"
             f"{'srv':>5}{'cli':>5}{'ratio':>8}{'[95 % interval]':>17}{'tput':>7}"]
    for sh in res["shapes"]:
        name = f"{sh['connections']} x {sh['size']} B, pipe {sh['pipeline']}"
        ratios = sh.get("ratios") or {}
        for k in ("epoll-echo",) + tuple(ratios):
            f, r = sh[k], ratios.get(k)
            lines.append(f"   {name:<22}{k:<25}{fmt(f['msgs_per_s']):>10}"
                         f"{fmt(f['server_cpu_s_per_million'], '{:.3f}'):>9}"
                         f"{fmt(f['msgs_per_server_cpu_s']):>12}"
                         f"{f['server_busy']:>5.0%}{f['client_busy']:>5.0%}"
                         + (ratio_cols(r) if r else ""))
            name = ""
        if "echo_server_vs_ev_echo" in sh:
            lines.append(f"   {'':<22}{'echo-server / ev-echo':<25}{'':>41}"
                         + ratio_cols(sh["echo_server_vs_ev_echo"]) +
                         "  <- its own work on top of libevent (target: median >= 0.98, "
                         "interval from 0.97)")
        for k, r in sh.get("variants_vs_echo_server", {}).items():
            lines.append(f"   {'':<22}{k + ' / echo-server':<66}" + ratio_cols(r)
                         + "  <- the variant's change")
        for k, why in sh.get("failed", {}).items():
            lines.append(f"   {'':<22}{k:<25}failed: {why}")
    for k, why in res.get("peers_skipped", {}).items():
        lines.append(f"   not measured: {k}: {why}")
    runs = [sh[k] for sh in res["shapes"] for k in ("epoll-echo",) + tuple(sh.get("ratios", {}))]
    if runs and all("steal_s" in f for f in runs):
        lines.append(f"   steal on the two cores during the measured runs: "
                     f"{sum(f['steal_s'] for f in runs):.2f} s in "
                     f"{sum(f['seconds'] for f in runs):.0f} s of runs")
    return lines


def ratio_cols(r):
    """The ratio columns of one echo_ratios result: median, interval, throughput."""
    lo, hi = r.get("ratio_efficiency_ci95") or (None, None)
    ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else ""
    return (f"{r['ratio_efficiency_median_round']:>8.3f}{ci:>17}"
            f"{fmt(r.get('ratio_throughput_median_round'), '{:.3f}'):>7}")


def table_churn(res):
    lines = [f"2. churn: connect, one 64 B echo, close ({res['concurrency']} in flight per run, "
             f"{res['seconds']:g} s, sources {res['sources']}; client on cpu{CLIENT_CPU})",
             f"   {'client procs':<14}{'server':<13}{'conns/s':>10}{'CPU-us/conn':>13}"
             f"{'conns/CPU-s':>13}{'failed':>8}{'TIME_WAIT':>11}"]
    for row in res["runs"]:
        name = str(row["procs"])
        for k in ("epoll-echo", "echo-server"):
            f = row[k]
            lines.append(f"   {name:<14}{k:<13}{fmt(f['conns_per_s']):>10}"
                         f"{fmt(f['server_cpu_us_per_conn'], '{:.1f}'):>13}"
                         f"{fmt(f['conns_per_server_cpu_s']):>13}{f['failed']:>8}"
                         f"{fmt(f['time_wait_after']):>11}")
            name = ""
        lines.append(f"   {'':<14}{'ratio':<13}{row['ratio_throughput']:>10.3f}{'':>13}"
                     f"{row['ratio_efficiency']:>13.3f}")
    if "port_budget" in res:
        lines.append("   port budget: " + res["port_budget"])
    if "peers" in res:
        lines += table_churn_peers(res["peers"])
    return lines


def table_churn_peers(p):
    lines = [f"2b. churn, every server: {p['rounds']} paired round(s) of "
             f"{p['seconds_per_round']:g} s, {p['client_procs']} client process; ratio: "
             f"connections per server CPU-second over epoll-echo's in the same round, the "
             f"median [95 % bootstrap interval]",
             f"   {'server':<25}{'conns/s':>10}{'CPU-us/conn':>13}{'conns/CPU-s':>13}"
             f"{'failed':>8}{'ratio':>8}{'[95 % interval]':>17}"]
    for k in p["servers"]:
        if k not in p:
            continue
        f = p[k]
        ci = f.get("ratio_efficiency_ci95")
        lines.append(f"   {k:<25}{fmt(f['conns_per_s']):>10}"
                     f"{fmt(f['server_cpu_us_per_conn'], '{:.1f}'):>13}"
                     f"{fmt(f['conns_per_server_cpu_s']):>13}{f['failed']:>8}"
                     f"{fmt(f.get('ratio_efficiency_median_round'), '{:.3f}'):>8}"
                     f"{(f'[{ci[0]:.3f}, {ci[1]:.3f}]' if ci else ''):>17}")
    for k, why in p.get("failed", {}).items():
        lines.append(f"   {k:<25}failed: {why}")
    return lines


def table_memory(res):
    lines = [f"3b. memory per idle connection, every server, at {res['connections']:,} "
             f"connections (bytes per connection)",
             f"   {'server':<25}{'establish':>10}{'RSS':>9}{'anon':>9}{'Slab':>9}"
             f"{'sockets':>9}{'C heap':>9}"]
    for r in res["runs"]:
        if "error" in r:
            lines.append(f"   {r['server']:<25}failed: {r['error']}")
            continue
        lines.append(f"   {r['server']:<25}{r['establish_s']:>9.2f}s"
                     f"{fmt(r['rss_bytes_per_conn']):>9}{fmt(r['anon_bytes_per_conn']):>9}"
                     f"{fmt(r['slab_bytes_per_conn']):>9}"
                     f"{fmt(r.get('socket_slab_bytes_per_conn')):>9}"
                     f"{fmt(r.get('heap_bytes_per_conn')):>9}")
    lines.append("   " + res["how"])
    return lines


def table_scale(res):
    lines = ["3. scale: idle connections (client scenario idle, heartbeat 20 s)",
             f"   {'server':<13}{'conns':>8}{'workers':>8}{'procs':>6}{'establish':>11}"
             f"{'conns/s':>9}{'heap B/conn':>12}{'RSS B/conn':>12}{'anon B/conn':>12}"
             f"{'Slab B/conn':>12}"]
    for r in res["runs"]:
        lines.append(f"   {r['server']:<13}{r['connections']:>8,}{r['workers']:>8}"
                     f"{r['client_procs']:>6}{r['establish_s']:>10.2f}s{fmt(r['conns_per_s']):>9}"
                     f"{fmt(r.get('heap_bytes_per_conn')):>12}"
                     f"{fmt(r['rss_bytes_per_conn']):>12}{fmt(r['anon_bytes_per_conn']):>12}"
                     f"{fmt(r['slab_bytes_per_conn']):>12}")
    lines.append("   heap: " + res["heap"])
    lines.append("   Slab: " + res["slab"])
    return lines


def table_census(res):
    lines = [f"5. census speed: sockets of one port with {res['connections']:,} connections up "
             f"({res['sockets_in_netns']:,} TCP sockets in the namespace)"]
    for k in ("load-client states", "ss", "/proc/net/tcp"):
        extra = (f"; its own timing of the census: {res[k]['own_census_ms']:.1f} ms"
                 if "own_census_ms" in res[k] else "")
        lines.append(f"   {k:<20}{res[k]['ms']:>9.1f} ms   ({res[k]['sockets']:,} sockets{extra})")
    lines.append("   " + res["how"])
    return lines


def table_close(res):
    st, bu = res["steady"], res["burst"]
    lines = [f"4. close latency",
             f"   (a) half-close at {st['rate']}/s, FIN-to-FIN from the client (ms):",
             f"   {'server':<13}{'closes':>8}{'failed':>8}{'p50':>8}{'p99':>8}{'p99.9':>8}"
             f"{'max':>8}"]
    for k in ("epoll-echo", "echo-server"):
        if k in st:
            f = st[k]["fin_to_fin"]
            lines.append(f"   {k:<13}{st[k]['completed']:>8}{st[k]['failed']:>8}"
                         f"{f['p50_ms']:>8.3f}{f['p99_ms']:>8.3f}{f['p99.9_ms']:>8.3f}"
                         f"{f['max_ms']:>8.3f}")
    if "echo-server" in st:
        h = st["echo-server"]["server_fin_to_close_us"]
        lines.append(f"   echo-server's own FIN-to-close (us): p50 {h['p50']} p99 {h['p99']} "
                     f"p99.9 {h['p999']} max {h['max']} (n={h['count']}); target p99 < 1 ms")
    lines.append(f"   (b) burst: {bu['how']}")
    for k in ("epoll-echo", "echo-server"):
        if k in bu:
            f = bu[k]
            lines.append(f"   {k:<13}{f['connections']:,} closed: the client's exit took "
                         f"{f['client_exit_ms']:.1f} ms; last fd closed after "
                         f"{fmt(f['last_fd_closed_ms'], '{:.1f}')} ms, last socket gone after "
                         f"{f['last_socket_gone_ms']:.1f} ms")
    if "echo-server" in bu:
        h = bu["echo-server"]["server_fin_to_close_us"]
        lines.append(f"   echo-server's own FIN-to-close (us): p50 {h['p50']} p99 {h['p99']} "
                     f"p99.9 {h['p999']} max {h['max']} (n={h['count']})")
    if "epoll-echo" in bu and "echo-server" in bu:
        lines.append(f"   ratio (time until the last socket is gone, epoll-echo / echo-server): "
                     f"{bu['epoll-echo']['last_socket_gone_ms'] / bu['echo-server']['last_socket_gone_ms']:.3f}")
    return lines


def table_deadpeer(res):
    lines = ["6. dead-peer detection against the configured budget (echo-server)",
             f"   {'peer':<8}{'mechanism':<20}{'budget':>8}{'first':>8}{'p50':>8}{'max':>8}"
             f"{'max/budget':>12}  closes by reason (expected)"]
    for r in res["rows"]:
        reasons = ", ".join(f"{k}={v}" for k, v in r["reasons"].items())
        lines.append(f"   {r['scenario']:<8}{r['mechanism']:<20}{r['budget_s']:>7.1f}s"
                     f"{r['detect_first_s']:>7.2f}s{r['detect_p50_s']:>7.2f}s"
                     f"{r['detect_max_s']:>7.2f}s{r['ratio_max_to_budget']:>12.3f}  "
                     f"{reasons} ({r['expected']}; {r['closed']}/{r['died']})")
    lines.append("   " + res["how"])
    return lines


def table_syscalls(res):
    lines = [f"1c. system calls per message: {res['tool']}"]
    for sh in res["shapes"]:
        lines.append(f"   {sh['connections']} x {sh['size']} B, pipe {sh['pipeline']}")
        for kind in res["servers"]:
            r = sh.get(kind)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"     {kind:<25}failed: {r['error']}")
                continue
            calls = "  ".join(f"{k} {v:.2f}" for k, v in r["per_message"].items() if v >= 0.005)
            lines.append(f"     {kind:<25}{r['total_per_message']:>6.2f}   {calls}")
    return lines


def peers_summary():
    """RESULTS["peers"]: one row per server from the echo, churn, memory and syscalls
    sections (whichever ran), and what each server is (versions, build flags, read size,
    backlog, TCP_NODELAY)."""
    kinds, skipped = contenders(with_variants=True)
    all_kinds = ("epoll-echo",) + kinds
    servers = {}
    for k in all_kinds:
        what = (f"an echo-server variant: {VARIANTS[k]} (BENCH_VARIANTS)" if k in VARIANTS
                else "tests/bench/epoll-echo.c: the raw epoll loop, the baseline")
        servers[k] = {"what": peers.PEERS.get(k, {}).get("what", what),
            **peers.describe(k)}
        if k in BANNERS:
            servers[k]["reported_at_start"] = BANNERS[k]
    rows = []
    echo = RESULTS.get("echo", {})
    churn = RESULTS.get("churn", {}).get("peers", {})
    memory = {r["server"]: r for r in RESULTS.get("memory", {}).get("runs", [])}
    sysc = RESULTS.get("syscalls", {}).get("shapes", [])
    for k in all_kinds:
        row = {"server": k, "echo": [], "syscalls_per_message": []}
        for sh in echo.get("shapes", []):
            r = sh.get("ratios", {}).get(k)
            row["echo"].append({"shape": f"{sh['connections']}x{sh['size']}p{sh['pipeline']}",
                                "ratio": 1.0 if k == "epoll-echo" else
                                r and r["ratio_efficiency_median_round"],
                                "ci95": r and r["ratio_efficiency_ci95"]})
        if k in churn:
            row["churn"] = {"ratio": 1.0 if k == "epoll-echo" else
                            churn[k].get("ratio_efficiency_median_round"),
                            "ci95": churn[k].get("ratio_efficiency_ci95"),
                            "server_cpu_us_per_conn": churn[k]["server_cpu_us_per_conn"]}
        m = memory.get(k)
        if m and "error" not in m:
            row["memory"] = {f: m.get(f) for f in (
                "rss_bytes_per_conn", "anon_bytes_per_conn", "slab_bytes_per_conn",
                "socket_slab_bytes_per_conn", "heap_bytes_per_conn")}
        for sh in sysc:
            r = sh.get(k) or {}
            row["syscalls_per_message"].append(r.get("total_per_message"))
        rows.append(row)
    return {"cpu_time_from": RESULTS["conditions"]["cpu_time_from"],
            "rounds": ROUNDS, "seconds_per_round": ROUND_SECONDS,
            "servers": servers, "peers_skipped": skipped, "rows": rows}


def table_peers(res):
    def cell(r):
        if not r or r.get("ratio") is None:
            return "-"
        if r.get("ci95"):
            return f"{r['ratio']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
        return f"{r['ratio']:.2f}"
    shapes = next((r["echo"] for r in res["rows"] if r["echo"]), [])
    head = "".join(f"{e['shape']:<20}" for e in shapes)
    lines = [f"7. peers: every server against epoll-echo, in one table (server CPU from "
             f"{res['cpu_time_from']})",
             "   echo and churn: median of the paired rounds' efficiency ratios [95 % "
             "bootstrap interval]; memory: bytes per idle connection at 10k (RSS / C heap); "
             "system calls per message at each echo shape",
             f"   {'server':<25}{head}{'churn':<20}{'RSS':>7}{'heap':>7}   syscalls/msg"]
    for r in res["rows"]:
        m = r.get("memory", {})
        sc = " / ".join(fmt(x, "{:.2f}") for x in r["syscalls_per_message"])
        lines.append(f"   {r['server']:<25}" + "".join(f"{cell(e):<20}" for e in r["echo"])
                     + f"{cell(r.get('churn')):<20}{fmt(m.get('rss_bytes_per_conn')):>7}"
                     f"{fmt(m.get('heap_bytes_per_conn')):>7}   {sc}")
    lines.append("   servers (all on 127.0.0.1, TCP_NODELAY, backlog 4096, reads of 16 KiB "
                 "where the program chooses; results.json peers.servers has the rest):")
    for k, d in res["servers"].items():
        facts = [d["go"]] if d.get("go") else []
        facts += [d["python"]] if d.get("python") else []
        facts += [f"{f} {d[f]}" for f in ("node", "uvloop", "libuv", "libevent")
                  if d.get(f)]
        if "GOMAXPROCS" in d:
            facts.append(f"GOMAXPROCS={d['GOMAXPROCS']}")
        if isinstance(d.get("read_size"), str):
            facts.append("read size " + d["read_size"])
        lines.append(f"     {k:<25}{'; '.join(facts) or d.get('compiler', '')}")
    for k, why in res["peers_skipped"].items():
        lines.append(f"     {k:<25}not measured: {why}")
    return lines


TABLES = {"echo": table_echo, "echo_saturated": table_echo_saturated,
          "syscalls": table_syscalls, "churn": table_churn, "scale": table_scale,
          "memory": table_memory, "close": table_close, "census": table_census,
          "deadpeer": table_deadpeer, "peers": table_peers}


def print_table():
    c = RESULTS["conditions"]
    print(f"\nteardown bench  {c['date']}  commit {c['commit']}")
    st = c.get("steal", {})
    steal = (f"; steal {st['seconds'].get('cpu', 0):g} s of {st['wall_s']:g} s"
             if st.get("seconds") else "")
    print(f"conditions: {c['cores']} cores ({c['cpu']}), kernel {c['kernel']}, "
          f"{c['rounds']} paired rounds of {c['round_seconds']:g} s per echo shape, "
          f"{c['seconds_per_shape']:g} s per run elsewhere; network namespace: {c['netns']};\n"
          f"every server measured in this run, one after the other; server CPU time from "
          f"{c.get('cpu_time_from', '/proc/PID/stat')}{steal}")
    for name, fn in TABLES.items():
        if name in RESULTS:
            print()
            r = RESULTS[name]
            if "error" in r:
                print(f"{name}: FAILED: {r['error']}")
            elif "skipped" in r:
                print(f"{name}: not measured: {r['skipped']}")
            else:
                print("\n".join(fn(r)))
    print(f"\nresults: {OUT / 'results.json'}; server logs: {LOGS}")


def section_echo_saturated():
    """The same shapes driven by loadgen: the server's core is kept busy, so the ratio shows
    the per-message cost without the wake-up cost of a half-idle server."""
    section_echo("loadgen", "echo_saturated")


SECTIONS = [("echo", section_echo), ("echo_saturated", section_echo_saturated),
            ("syscalls", section_syscalls), ("churn", section_churn),
            ("memory", section_memory), ("scale", section_scale),
            ("close", section_close), ("deadpeer", section_deadpeer)]
PEER_SECTIONS = ("echo", "syscalls", "churn", "memory")


def on_signal(sig, frame):
    raise KeyboardInterrupt


def enter_netns():
    """Re-runs the bench in a private network namespace (root): its 100k sockets, its
    TIME_WAIT and its ports stay out of the host's (and other tests') way, and every socket
    goes with the namespace at the end. No sysctl is changed. Returns normally when the
    bench should run here (already inside, not root, or unshare failed)."""
    if os.environ.get("BENCH_NETNS") or os.geteuid() != 0:
        return
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        RESULTS["netns"] = "host network namespace (unshare --net failed)"
        return
    env = dict(os.environ, BENCH_NETNS="private")
    os.execvpe("unshare", ["unshare", "--net", "--", "sh", "-c",
                           'ip link set lo up && exec "$0" "$@"', sys.executable,
                           str(Path(__file__).resolve())], env)


def main():
    enter_netns()
    LOGS.mkdir(parents=True, exist_ok=True)
    for path in (SERVER, EPOLL, BEV, EVECHO):
        if not path.exists():
            log(f"bench: {path} is missing (make bench builds it)")
            return 2
    signal.signal(signal.SIGTERM, on_signal)
    global METER
    METER = peers.CpuMeter(os.environ.get("BENCH_CPU"))
    RESULTS["conditions"] = conditions()
    RESULTS["conditions"]["netns"] = RESULTS.pop("netns", None) or (
        "private (unshare --net), loopback only" if os.environ.get("BENCH_NETNS") else "host")
    steal0, t0 = peers.steal_ticks(), time.monotonic()
    failed = 0
    try:
        for name, fn in SECTIONS:
            if ONLY and name not in ONLY:
                continue
            try:
                fn()
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one section failing must not lose the others
                failed += 1
                RESULTS.setdefault(name, {})["error"] = f"{type(e).__name__}: {e}"
                log(f"bench: {name} failed: {e}")
            if name in PEER_SECTIONS:
                RESULTS["peers"] = peers_summary()
            save()
    finally:
        PROCS.stop_all()
        METER.remove_all()
        steal = peers.steal_ticks()
        wall = time.monotonic() - t0
        RESULTS["conditions"]["steal"] = {
            "seconds": {c: round((steal[c] - steal0.get(c, 0)) / CLK_TCK, 2) for c in steal},
            "wall_s": round(wall, 1),
            "how": "/proc/stat steal over the whole run: time the hypervisor gave this "
                   "VM's CPUs to something else while they wanted to run (cpu: all CPUs)"}
        save()
    print_table()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
