"""What `make bench` needs to compare echo-server with the servers a user would pick
instead (issue 19), kept apart from bench.py's sections:

- PEERS: each echo server the bench runs, how to start it, why it cannot run here (a
  missing toolchain: the peer is skipped with that reason), and what to record about it
  (versions, build flags, read size, backlog, TCP_NODELAY) in results.json;
- CpuMeter: a server's CPU time counted over every thread and process it ever had, exited
  ones included, from a cgroup of its own (Go and Node run work on threads other than the
  main one, and /proc/PID/schedstat counts only the main thread);
- steal time from /proc/stat, and a percentile bootstrap interval for a median.

Standard library only. Every cgroup made here is removed again (CpuMeter.remove_all),
also when the bench fails; groups a killed bench left behind are removed at the next
start."""
import errno
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "bench"
# The same for every server (benchnet.h's BENCH_READ_SIZE and BENCH_BACKLOG): one read of
# at most 16 KiB per readiness where the server lets the program choose, accept queue 4096.
READ_SIZE = 16384
BACKLOG = 4096
# echo-server with every deadline off (heartbeat, fin and write timeouts, TCP_USER_TIMEOUT,
# keepalive): what its loop costs without its features' clock stamps and timers.
DEADLINES_OFF = ("heartbeat_timeout=0", "fin_timeout=0", "write_timeout=0", "user_timeout=0",
                 "keepalive=no")
DEBIAN_PYTHON = "/usr/bin/python3"  # where Debian's python3-uvloop is importable
GOMAXPROCS = "1"


def _run(argv, **kw):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    return r, None


def _first_line(argv):
    r, err = _run(argv)
    if r is None or r.returncode != 0:
        return None
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() \
        else None


def node_path():
    return shutil.which("node") or shutil.which("nodejs")


# Each peer: what it is, how it is built or started. "argv" gets the listen address and the
# port file appended; "missing" says why it cannot run here (None: it can).
def _missing_bin(path, why):
    return None if Path(path).exists() else f"{path.relative_to(REPO)} was not built: {why}"


def _uvloop_missing():
    if not Path(DEBIAN_PYTHON).exists():
        return f"{DEBIAN_PYTHON} is missing (apt-get install python3)"
    r, err = _run([DEBIAN_PYTHON, "-c", "import uvloop"])
    if r is None or r.returncode != 0:
        return "python3-uvloop is not installed (make bench-deps)"
    return None


PEERS = {
    "echo-server": {
        "what": "bin/echo-server, correct mode (every deadline armed)", "lang": "C"},
    "echo-server-nodeadlines": {
        "what": "bin/echo-server with " + " ".join(DEADLINES_OFF), "lang": "C"},
    "ev-echo": {
        "what": "tests/bench/ev-echo.c: epoll-echo's loop on a libevent event_base",
        "lang": "C", "bin": OUT / "ev-echo"},
    "bev-echo": {
        "what": "tests/bench/bev-echo.c: the textbook libevent bufferevent server",
        "lang": "C", "bin": OUT / "bev-echo"},
    "uv-echo": {
        "what": "tests/bench/uv-echo.c: libuv, uv_try_write from the read callback, uv_write "
                "only for the rest", "lang": "C", "bin": OUT / "uv-echo",
        "missing": lambda: _missing_bin(OUT / "uv-echo", "libuv1-dev is not installed "
                                        "(make bench-deps)")},
    "go-echo": {
        "what": "tests/bench/go-echo.go: net.Listener, a goroutine per connection, a "
                "Read/Write loop", "lang": "Go", "bin": OUT / "go-echo",
        "env": {"GOMAXPROCS": GOMAXPROCS},
        "missing": lambda: _missing_bin(OUT / "go-echo", "golang-go is not installed "
                                        "(make bench-deps)")},
    "node-echo": {
        "what": "tests/bench/node-echo.js: net.createServer({noDelay: true}, s => s.pipe(s))",
        "lang": "JavaScript",
        "missing": lambda: None if node_path() else "nodejs is not installed "
                                                    "(make bench-deps)"},
    "uvloop-echo": {
        "what": "tests/bench/uvloop-echo.py: asyncio on uvloop, the Protocol API",
        "lang": "Python", "missing": _uvloop_missing},
}
C_HEAP = ("epoll-echo", "ev-echo", "bev-echo", "uv-echo")  # answer SIGUSR1 with `heap {json}`


def peer_argv(kind):
    """The command (without --listen/--port-file) and extra environment of a peer kind
    other than echo-server and epoll-echo."""
    spec = PEERS[kind]
    if kind == "node-echo":
        return [node_path(), REPO / "tests" / "bench" / "node-echo.js"], {}
    if kind == "uvloop-echo":
        return [DEBIAN_PYTHON, REPO / "tests" / "bench" / "uvloop-echo.py"], {}
    return [spec["bin"]], dict(spec.get("env", {}))


def peer_missing(kind):
    spec = PEERS.get(kind, {})
    return spec["missing"]() if "missing" in spec else None


def describe(kind):
    """What results.json records about one server: versions, build flags, read size,
    backlog, where TCP_NODELAY comes from."""
    cflags = os.environ.get("BENCH_CFLAGS", "(not passed by make)")
    cc = _first_line([os.environ.get("CC", "cc"), "--version"])
    libevent = _first_line(["pkg-config", "--modversion", "libevent_core"])
    common = {"read_size": READ_SIZE, "backlog": BACKLOG,
              "tcp_nodelay": "set on the listener, inherited by every accepted socket"}
    if kind in ("epoll-echo", "ev-echo", "bev-echo"):
        return {**common, "compiler": cc, "build": cflags,
                **({"libevent": libevent} if kind != "epoll-echo" else {})}
    if kind.startswith("echo-server"):
        return {**common, "compiler": cc, "libevent": libevent,
                "build": os.environ.get("BENCH_SERVER_CFLAGS", "(not passed by make)"),
                "settings": [f"backlog={BACKLOG}"] +
                            (list(DEADLINES_OFF) if kind.endswith("nodeadlines") else [])}
    if kind == "uv-echo":
        return {**common, "compiler": cc, "build": cflags,
                "libuv": _first_line(["pkg-config", "--modversion", "libuv"]),
                "tcp_nodelay": "uv_tcp_nodelay on every accepted connection (one setsockopt)"}
    if kind == "go-echo":
        return {**common, "go": _first_line(["go", "version"]),
                "build": "go build, GO111MODULE=off, GOCACHE under build/bench (default "
                         "flags)", "GOMAXPROCS": int(GOMAXPROCS),
                "backlog": f"{BACKLOG}: Go listens with net.core.somaxconn, here "
                           f"{somaxconn()}",
                "tcp_nodelay": "Go's default on every TCP connection (one setsockopt; Go "
                               "also turns on keepalive, 15 s: three more)"}
    if kind == "node-echo":
        return {**common, "node": _first_line([node_path(), "--version"]),
                "libuv": _first_line([node_path(), "-p", "process.versions.uv"]),
                "read_size": "65536: libuv's read size in Node, not settable for accepted "
                             "sockets",
                "tcp_nodelay": "noDelay: true, one setsockopt per accepted socket"}
    if kind == "uvloop-echo":
        return {**common, "python": _first_line([DEBIAN_PYTHON, "--version"]),
                "uvloop": _first_line([DEBIAN_PYTHON, "-c",
                                       "import uvloop; print(uvloop.__version__)"]),
                "read_size": "256000: uvloop's own read buffer, not settable",
                "tcp_nodelay": "uvloop sets it on every TCP transport (one setsockopt)"}
    return common


def somaxconn():
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return None


# ---- CPU time from a cgroup -----------------------------------------------------------------

CG_PREFIX = "teardown-bench-"


def _mounts():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            yield mnt.replace("\\040", " "), fstype, opts.split(",")


def _own_cgroup(v1_controller=None):
    """This process's cgroup path: the v2 one (0::PATH), or the v1 one of a controller."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if v1_controller is None and hid == "0" and ctrls == "":
                return path
            if v1_controller is not None and v1_controller in ctrls.split(","):
                return path
    return None


def _candidates():
    """(method, parent directory, file to read): cgroup v2 first, then v1 cpuacct."""
    out = []
    own = _own_cgroup()
    for mnt, fstype, opts in _mounts():
        if fstype == "cgroup2" and own is not None:
            out.append(("cgroup v2 cpu.stat usage_usec", Path(mnt + own.rstrip("/")), "cpu.stat"))
    own1 = _own_cgroup("cpuacct")
    for mnt, fstype, opts in _mounts():
        if fstype == "cgroup" and "cpuacct" in opts and own1 is not None:
            out.append(("cgroup v1 cpuacct.usage", Path(mnt + own1.rstrip("/")),
                        "cpuacct.usage"))
    return out


class CpuGroup:
    """One server's cgroup: the server joins it before exec (join), so every thread and
    child it ever has is counted, also after they exit."""

    def __init__(self, meter, path):
        self.meter, self.path = meter, path

    def join(self):
        """In the child, before exec (preexec_fn): only a write, nothing that allocates
        much or takes a lock another thread may hold (the bench has no other threads)."""
        with open(self.path / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    def seconds(self):
        text = (self.path / self.meter.file).read_text()
        if self.meter.file == "cpu.stat":
            return int(re.search(r"^usage_usec (\d+)", text, re.M).group(1)) / 1e6
        return int(text) / 1e9

    def remove(self):
        _remove_group(self.path)
        if self in self.meter.groups:
            self.meter.groups.remove(self)


def _group_pids(path):
    try:
        return [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _remove_group(path, timeout=5.0):
    """rmdir, once the last task has left (a task that exited may stay for some ms until it
    is reaped). Whatever is still inside after the timeout was started by the bench into
    this group: killed, then the rmdir is tried again."""
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY:
                return False
        if time.monotonic() > deadline:
            if killed:
                return False
            for pid in _group_pids(path):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed, deadline = True, time.monotonic() + timeout
        time.sleep(0.01)


class CpuMeter:
    """Picks how server CPU time is measured, once: a cgroup per server (v2, else v1
    cpuacct) when a child group can be made here, else /proc/PID/stat utime + stime of
    the whole process (all its threads, exited ones included, in clock ticks).
    want ("v2", "v1", "proc"; BENCH_CPU in bench.py) forces one, to check the others."""

    def __init__(self, want=None):
        self.method, self.parent, self.file = "/proc/PID/stat utime+stime", None, None
        self.groups = []
        self.seq = 0
        for method, parent, file in _candidates():
            if want and not method.startswith(f"cgroup {want} "):
                continue
            self._remove_stale(parent)
            probe = parent / f"{CG_PREFIX}{os.getpid()}-probe"
            try:
                probe.mkdir()
            except OSError:
                continue
            ok = (probe / file).exists()
            _remove_group(probe)
            if ok:
                self.method, self.parent, self.file = method, parent, file
                break

    @staticmethod
    def _remove_stale(parent):
        """Groups of an earlier bench that was killed before it could remove them: empty
        ones whose bench process is gone."""
        try:
            names = [p for p in parent.iterdir() if p.name.startswith(CG_PREFIX)]
        except OSError:
            return
        for p in names:
            owner = p.name[len(CG_PREFIX):].split("-")[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists() and not _group_pids(p):
                _remove_group(p, timeout=1.0)

    def new(self, name):
        """A fresh group for one server, or None (the /proc fallback)."""
        if self.parent is None:
            return None
        self.seq += 1
        path = self.parent / f"{CG_PREFIX}{os.getpid()}-{self.seq}-{re.sub('[^A-Za-z0-9]', '', name)[:40]}"
        path.mkdir()
        g = CpuGroup(self, path)
        self.groups.append(g)
        return g

    def remove_all(self):
        for g in list(self.groups):
            g.remove()


# ---- steal time and the bootstrap ----------------------------------------------------------

def steal_ticks():
    """{cpuN and "cpu": steal ticks} from /proc/stat (time a hypervisor ran something else
    while this guest's CPU wanted to run)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                v = line.split()
                out[v[0]] = int(v[8]) if len(v) > 8 else 0
    return out


def bootstrap_median(xs, resamples=10000, seed=19, level=0.95):
    """The median of xs and its percentile-bootstrap interval: xs resampled with
    replacement `resamples` times (fixed seed: the same data give the same interval),
    the median of each, and the (1-level)/2 and (1+level)/2 quantiles of those medians."""
    if not xs:
        return None, None, None
    rng = random.Random(seed)
    k = len(xs)
    meds = sorted(statistics.median(rng.choices(xs, k=k)) for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return statistics.median(xs), lo, hi
