#!/usr/bin/env python3
"""make bench: bin/echo-server against build/bench/epoll-echo (a minimal raw-epoll echo
server, the floor cost of the system calls), measured in the same run (issue 8).

Sections (each one's results go to build/bench/results.json as soon as it is done):
  echo     efficiency: messages per server CPU-second and throughput, server on cpu0, client
           on cpu1 (taskset); ratio echo-server / epoll-echo is the headline
  churn    connect, one echo, close: connections per second, 1 and 2 client processes
  scale    10k / 50k / 100k idle connections: time to establish, user memory per connection
           (RSS, anonymous RSS), kernel Slab delta
  close    (a) half-close at 1,000/s: FIN-to-FIN from the client; (b) 10k connections closed
           in one burst: time until the server's last socket is gone, its FIN-to-close
  census   `load-client states` vs `ss` vs parsing /proc/net/tcp over 100k+ sockets
  deadpeer crash detection time against its budget (needs the client's crash scenario)

Environment: BENCH_SECONDS (seconds per echo shape, default 10), BENCH_ONLY=echo,churn,...
(a subset), BENCH_CLIENT=loadgen to drive the echo shapes with the stopgap generator.

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

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "bench"
LOGS = OUT / "logs"
SERVER = REPO / "bin" / "echo-server"
CLIENT = REPO / "bin" / "load-client"
EPOLL = OUT / "epoll-echo"
LOADGEN = OUT / "loadgen"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SERVER_CPU, CLIENT_CPU = "0", "1"
COUNTERS_RE = re.compile(r"echo-server\[(\d+)\] \w+: counters (\{.*\})\s*$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------------------------

class Procs:
    """Every process the bench starts, so all of them are stopped on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen([str(a) for a in argv], start_new_session=True, **kw)
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


def proc_cpu_ticks(pid):
    st = proc_stat(pid)
    return int(st[11]) + int(st[12]) if st else 0


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

class Server:
    """bin/echo-server or epoll-echo on 127.0.0.1, port 0, stderr to build/bench/logs."""

    def __init__(self, kind, name, cpu=SERVER_CPU, sets=()):
        self.kind, self.name = kind, name
        self.port_file = Path(tempfile.mkstemp(prefix="bench-port-")[1])
        self.port_file.unlink()
        self.log_path = LOGS / f"{name}.log"
        if kind == "epoll-echo":
            argv = [EPOLL, "--listen", "127.0.0.1:0", "--port-file", self.port_file]
        else:
            argv = [SERVER, "--listen", "127.0.0.1:0", "--port-file", self.port_file]
            for s in sets:
                argv += ["--set", s]
        if cpu is not None:
            argv = ["taskset", "-c", cpu] + argv
        self.log_file = open(self.log_path, "w")
        self.proc = PROCS.start(argv, stdout=self.log_file, stderr=subprocess.STDOUT)
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
        return sum(proc_cpu_ticks(pid) for pid in self.pids()) / CLK_TCK

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

    def open_conns(self):
        return sum(c["open"] for c in self.counters().values())

    def stop(self):
        rc = PROCS.stop(self.proc, extra_pids=self.workers if hasattr(self, "workers") else ())
        self.log_file.close()
        self.port_file.unlink(missing_ok=True)
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
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "seconds_per_shape": SECONDS, "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU,
            "commit": rev + ("+uncommitted server/common changes" if dirty else ""),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


# ---- 1. echo efficiency ------------------------------------------------------------------

SHAPES = [  # (connections, message bytes, pipeline)
    (1000, 64, 1),
    (1000, 64, 16),
    (100, 4096, 4),
]


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
        self.cli = proc_cpu_ticks(client_pid) / CLK_TCK if client_pid else 0.0
        self.cores = cpu_times()


def echo_figures(msgs, a, b, client_seconds=None):
    """Throughput over the client's own measured time when it reports one; CPU figures
    over the driver's samples (a, b) around it."""
    wall = b.t - a.t
    srv_cpu = b.srv - a.srv
    secs = client_seconds or wall
    return {
        "messages": msgs, "seconds": round(secs, 3), "msgs_per_s": round(msgs / secs),
        "server_cpu_s": round(srv_cpu, 3),
        "server_cpu_s_per_million": round(srv_cpu / msgs * 1e6, 3) if msgs else None,
        "msgs_per_server_cpu_s": round(msgs / srv_cpu) if srv_cpu > 0 else None,
        "server_busy": round(srv_cpu / wall, 3),
        "client_busy": round((b.cli - a.cli) / wall, 3),
        "core_busy": {"server_core": round(core_busy(a.cores, b.cores, SERVER_CPU), 3),
                      "client_core": round(core_busy(a.cores, b.cores, CLIENT_CPU), 3)},
    }


def echo_loadgen(srv, conns, size, depth):
    argv = ["taskset", "-c", CLIENT_CPU, LOADGEN, "--server", f"127.0.0.1:{srv.port}",
            "--connections", conns, "--size", size, "--pipeline", depth, "--seconds", SECONDS]
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


def echo_load_client(srv, conns, size, depth):
    argv = ["taskset", "-c", CLIENT_CPU, CLIENT, "--server", f"127.0.0.1:{srv.port}",
            "--scenario", "echo", "--connections", conns, "--size", size, "--pipeline", depth,
            "--messages", 1000000000, "--duration", f"{SECONDS:g}s", "--settle", "0",
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
    if r["failed"] or r["echo_mismatch"] or r["established"] < conns:
        raise RuntimeError(f"load-client against {srv.name}: {r}")
    return echo_figures(r["messages"], a, b, res["elapsed_us"] / 1e6)


def section_echo():
    kind = echo_client_kind()
    run = echo_loadgen if kind == "loadgen" else echo_load_client
    res = {"client": kind if kind != "loadgen" else
           "loadgen (stopgap in tests/bench: bin/load-client not usable for these shapes)",
           "shapes": []}
    RESULTS["echo"] = res
    for conns, size, depth in SHAPES:
        shape = {"connections": conns, "size": size, "pipeline": depth}
        for kind_srv in ("epoll-echo", "echo-server"):
            log(f"echo: {kind_srv} {conns} x {size} B, pipeline {depth}, {SECONDS:g} s")
            srv = Server(kind_srv, f"echo-{kind_srv}-{conns}x{size}p{depth}")
            try:
                shape[kind_srv] = run(srv, conns, size, depth)
            finally:
                srv.stop()
        e, s = shape["epoll-echo"], shape["echo-server"]
        shape["ratio_efficiency"] = round(s["msgs_per_server_cpu_s"] /
                                          e["msgs_per_server_cpu_s"], 3)
        shape["ratio_throughput"] = round(s["msgs_per_s"] / e["msgs_per_s"], 3)
        res["shapes"].append(shape)
        save()


# ---- the table ---------------------------------------------------------------------------

def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def table_echo(res):
    lines = [f"1. echo efficiency (client: {res['client']}; server on cpu{SERVER_CPU}, "
             f"client on cpu{CLIENT_CPU})",
             f"   {'shape':<26}{'server':<13}{'msgs/s':>11}{'CPU-s/M msgs':>14}"
             f"{'msgs/CPU-s':>12}{'srv busy':>10}{'cli busy':>10}"]
    for sh in res["shapes"]:
        name = f"{sh['connections']} x {sh['size']} B, pipe {sh['pipeline']}"
        for k in ("epoll-echo", "echo-server"):
            f = sh[k]
            lines.append(f"   {name:<26}{k:<13}{fmt(f['msgs_per_s']):>11}"
                         f"{fmt(f['server_cpu_s_per_million'], '{:.3f}'):>14}"
                         f"{fmt(f['msgs_per_server_cpu_s']):>12}"
                         f"{f['server_busy']:>10.0%}{f['client_busy']:>10.0%}")
            name = ""
        lines.append(f"   {'':<26}{'ratio':<13}{sh['ratio_throughput']:>11.3f}{'':>14}"
                     f"{sh['ratio_efficiency']:>12.3f}   <- echo-server / epoll-echo"
                     f" (target efficiency >= 1.0)")
    return lines


TABLES = {"echo": table_echo}


def print_table():
    c = RESULTS["conditions"]
    print(f"\nteardown bench  {c['date']}  commit {c['commit']}")
    print(f"conditions: {c['cores']} cores ({c['cpu']}), kernel {c['kernel']}, "
          f"{c['seconds_per_shape']:g} s per echo shape; both servers measured in this run")
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


SECTIONS = [("echo", section_echo)]


def on_signal(sig, frame):
    raise KeyboardInterrupt


def main():
    LOGS.mkdir(parents=True, exist_ok=True)
    for path in (SERVER, EPOLL):
        if not path.exists():
            log(f"bench: {path} is missing (make bench builds it)")
            return 2
    signal.signal(signal.SIGTERM, on_signal)
    RESULTS["conditions"] = conditions()
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
            save()
    finally:
        PROCS.stop_all()
        save()
    print_table()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
