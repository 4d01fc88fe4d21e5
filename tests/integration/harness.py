# Goal of this test: shared helpers that start the real echo-server on a free port and observe it from outside.
"""Harness for the integration tests of bin/echo-server.

The binary under test is $SERVER_BIN (default bin/echo-server, relative to the repository
root), so the same tests run against build/asan/bin/echo-server. Every server is started on
port 0 with --port-file, its stderr goes to a file the tests can grep, and a cleanup kills it
(SIGTERM, then SIGKILL) and fails the test when its stderr holds a sanitizer report. Every
client socket made through ServerTest.connect() is closed by a cleanup too.

Waiting is always polling a condition with a deadline (wait_until), never a fixed sleep;
measured values are printed (the runner shows print() output)."""
import ctypes
import datetime
import errno
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REASONS = ("eof", "reset", "timeout", "heartbeat", "write-timeout", "fin-timeout", "overload",
           "shutdown", "error", "max-age")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer: detected memory leaks")
COUNTERS_RE = re.compile(r"^\S+ echo-server\[(\d+)\] info: counters (\{.*\})\s*$")
LOG_RE = re.compile(r"^(\S+) echo-server\[(\d+)\] (error|warn|info|debug): (.*)$")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Sanitizer builds are slower to start and to run: every deadline has room for that.
START_TIMEOUT = 20.0


def server_bin():
    p = Path(os.environ.get("SERVER_BIN", "bin/echo-server"))
    return p if p.is_absolute() else REPO / p


def server_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def shim_env(rules):
    """The environment that preloads the fault-injection shim (tests/shim/stall.c, built
    into build/shim/stall.so) with TEARDOWN_SHIM=rules. The ASan runtime wants to come
    first in the library list: it is told not to check."""
    so = REPO / "build" / "shim" / "stall.so"
    if not so.exists():
        raise AssertionError(f"{so} does not exist (make build/shim/stall.so)")
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    return {"LD_PRELOAD": str(so), "TEARDOWN_SHIM": rules,
            "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}


def shim_trigger(test, rules):
    """A shim rule that acts once on demand: (trigger, env). The rule acts only while the
    file `trigger` exists (the test creates it) and the shim removes it once it has acted;
    the file and its directory are removed by a cleanup."""
    d = tempfile.mkdtemp(prefix="teardown-shim-")
    trigger = os.path.join(d, "trigger")
    test.addCleanup(lambda: (os.path.exists(trigger) and os.unlink(trigger), os.rmdir(d)))
    return trigger, shim_env(f"{rules},trigger={trigger}")


def wait_until(cond, timeout, what, interval=0.01):
    """Polls cond() until it returns a true value (returned) or fails the test after
    timeout seconds, naming what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def log_time(stamp):
    """The server's log timestamp (UTC, ms) as a Unix time."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def sanitizer_report(text):
    return next((m for m in SANITIZER_MARKS if m in text), None)


# ---------------------------------------------------------------- process observation

def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def child_pids(pid):
    """The children of pid, sorted (a server's workers)."""
    return sorted(_children(pid))


def pid_alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def process_tree(pid):
    """pid and its descendants (a server with workers > 1 forks)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pid, tree=True):
    """utime + stime of pid (and its descendants) from /proc/PID/stat, in seconds."""
    total = 0
    for p in (process_tree(pid) if tree else [pid]):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def rss_kb(pid, tree=True):
    """VmRSS of pid (and its descendants) from /proc/PID/status, in KiB."""
    total = 0
    for p in (process_tree(pid) if tree else [pid]):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_over(pid, seconds):
    """CPU seconds pid used during `seconds` of wall time, and that wall time."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:  # measuring an interval, not waiting for a state
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return cpu_seconds(pid) - c0, time.monotonic() - t0


# ------------------------------------------------------------------------ socket states

def have_ss():
    return shutil.which("ss") is not None


def ss_lines(port, state=None, side="sport"):
    """ss -tanH [state S] '( sport = :PORT )': the server port's sockets, one per line
    (side="dport": the clients' sockets to that port)."""
    cmd = ["ss", "-tanH"]
    if state:
        cmd += ["state", state]
    cmd += [f"( {side} = :{port} )"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return [l for l in p.stdout.splitlines() if l.strip()]


def ss_count(port, state, side="sport"):
    return len(ss_lines(port, state, side))


_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
               6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
               11: "CLOSING"}


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20


def tcp_state(local, remote):
    """State name of the TCP socket local (host, port) -> remote (host, port), or None when
    there is none. An exact sock_diag lookup (it finds TIME_WAIT sockets too): a few
    microseconds however many sockets the namespace holds, so it can be polled every
    millisecond."""
    fam = socket.AF_INET6 if ":" in local[0] else socket.AF_INET

    def addr(a):
        b = socket.inet_pton(fam, a)
        return b + b"\0" * (16 - len(b))
    sockid = (struct.pack("!HH", local[1], remote[1]) + addr(local[0]) + addr(remote[0])
              + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF))  # any if, INET_DIAG_NOCOOKIE
    req = struct.pack("=BBBBI", fam, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    msg = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, 1, 1, 0) + req  # REQUEST
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.send(msg)
        data = nl.recv(65536)
    _, typ = struct.unpack_from("=IH", data)
    if typ == 2:  # NLMSG_ERROR
        err = -struct.unpack_from("=i", data, 16)[0]
        if err == errno.ENOENT:
            return None
        raise OSError(err, f"sock_diag lookup: {os.strerror(err)}")
    return _TCP_STATES.get(data[17], str(data[17]))  # inet_diag_msg.idiag_state


def tcp_ext(name):
    """A TcpExt counter of this network namespace from /proc/net/netstat (0 if absent)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], vals.split()[1:])).get(name, 0))
    return 0


def tw_overflows():
    """Times the kernel found its TIME_WAIT table (tcp_max_tw_buckets) full and destroyed a
    socket that should have gone to TIME_WAIT or orphaned FIN_WAIT2: other programs in the
    same network namespace (benchmarks) can fill it."""
    return tcp_ext("TCPTimeWaitOverflow")


# ------------------------------------------------------------- server sockets (pidfd)

_libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438  # x86_64 and the generic table alike
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


def server_socket_for(pid, client_sock):
    """A duplicate (pidfd_getfd) of the server's socket whose peer is client_sock, as a
    socket object the caller must close. Raises unittest.SkipTest when not permitted."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("reading the server's socket options needs root (pidfd_getfd)")
    want = client_sock.getsockname()[:2]
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError) as e:
        raise unittest.SkipTest(f"pidfd_open not available: {e}")
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = _libc.syscall(SYS_pidfd_getfd, pidfd, int(name), 0)
            if fd < 0:
                err = ctypes.get_errno()
                if err in (1, 38):  # EPERM, ENOSYS
                    raise unittest.SkipTest(f"pidfd_getfd: {os.strerror(err)}")
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_STREAM and s.getpeername()[:2] == want:
                    return s
            except OSError:
                pass
            s.close()
    finally:
        os.close(pidfd)
    raise AssertionError(f"no server socket has peer {want}")


# ---------------------------------------------------------------------------- servers

class CliResult:
    def __init__(self, returncode, stdout, stderr, started):
        self.returncode, self.stdout, self.stderr, self.started = returncode, stdout, stderr, started
        self.sanitizer = sanitizer_report(stderr)


def run_cli(args, timeout=30, env=None, prefix=()):
    """Runs the server with args plus --port-file, for a run that must end on its own
    (usage errors, --check-config, --help). A server that starts listening instead is
    killed at once and reported with started=True (and returncode None). env: variables
    added to the server's environment; prefix: a command to run it under (unshare --net)."""
    with tempfile.TemporaryDirectory(prefix="teardown-cli-") as d:
        pf = os.path.join(d, "port")
        out_path, err_path = os.path.join(d, "out"), os.path.join(d, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen(list(prefix) + [str(server_bin()), "--port-file", pf]
                                 + list(args),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=dict(server_env(), **(env or {})), cwd=str(REPO))
        started = False
        try:
            wait_until(lambda: p.poll() is not None or os.path.exists(pf), timeout,
                       f"{args} to exit")
        finally:
            if p.poll() is None:
                started = os.path.exists(pf)
                p.kill()
            p.wait()
        with open(out_path, "rb") as f:
            stdout = f.read().decode("utf-8", "replace")
        with open(err_path, "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        return CliResult(None if started else p.returncode, stdout, stderr,
                         started or os.path.exists(pf))

class Server:
    """One echo-server process on a free port."""

    def __init__(self, test, mode=None, sets=None, listen="127.0.0.1:0", config=None,
                 extra=(), env=None):
        self.test = test
        self.env = dict(env or {})  # variables added to the server's environment
        self.dir = tempfile.mkdtemp(prefix="teardown-it-")
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.cmd = [str(server_bin())]
        if config is not None:
            self.cmd += ["-c", str(config)]
        if mode:
            self.cmd += ["--mode", mode]
        self.cmd += ["--listen", listen, "--port-file", self.port_file]
        for k, v in (sets or {}).items():
            self.cmd += ["--set", f"{k}={v}"]
        self.cmd += list(extra)
        self.proc = None
        self.port = None
        self.returncode = None
        self._log_read = 0

    # lifecycle
    def start(self):
        if not server_bin().exists():
            raise AssertionError(f"server binary {server_bin()} does not exist (make bin/echo-server)")
        self._err = open(self.log_path, "wb")
        self._out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=dict(server_env(), **self.env),
                                     cwd=str(REPO))
        self.test.addCleanup(self.cleanup)

        def port_ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode} before "
                                     f"listening: {self.cmd}\n{self.log_tail()}")
            try:
                with open(self.port_file) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if text.endswith("\n") else None

        text = wait_until(port_ready, START_TIMEOUT, f"port file {self.port_file}")
        self.port = int(text.strip())
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its status (fails the test on timeout)."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server did not exit within {timeout}s\n{self.log_tail()}")
        return self.returncode

    def stop(self, timeout=15):
        """SIGTERM, then the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def cleanup(self):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self._err.close()
            self._out.close()
        log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        mark = sanitizer_report(log)
        if mark:
            i = log.find(mark)
            raise AssertionError(f"sanitizer report in the server's stderr ({mark}):\n"
                                 f"{log[max(0, i - 200):i + 3000]}")

    # the log
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        lines = self.log().splitlines()
        return "server stderr (last lines):\n  " + "\n  ".join(lines[-n:])

    def log_lines(self, level=None, contains=None):
        """Parsed log lines (timestamp, pid, level, text), filtered."""
        out = []
        for line in self.log().splitlines():
            m = LOG_RE.match(line)
            if not m:
                continue
            if level and m.group(3) != level:
                continue
            if contains and contains not in m.group(4):
                continue
            out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
        return out

    def close_lines(self):
        """Debug lines `close peer=ADDR reason=R fin_to_close_us=N` as dicts, with the
        line's timestamp as a Unix time under "time"."""
        out = []
        for stamp, _, _, text in self.log_lines(level="debug"):
            if not text.startswith("close "):
                continue
            fields = dict(kv.split("=", 1) for kv in text.split()[1:] if "=" in kv)
            fields["time"] = log_time(stamp)
            out.append(fields)
        return out

    def close_line_for(self, client_port):
        return [f for f in self.close_lines()
                if f.get("peer", "").endswith(f":{client_port}")]

    @staticmethod
    def _counters_in(text):
        found = []
        for line in text.splitlines():
            m = COUNTERS_RE.match(line)
            if m:
                found.append(json.loads(m.group(2)))
        return found

    def counters(self, timeout=10):
        """Sends SIGUSR1 and returns the counters the server logs next."""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            start = f.tell()
        self.signal(signal.SIGUSR1)

        def next_line():
            with open(self.log_path, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
            complete = text[:text.rfind("\n") + 1]
            found = self._counters_in(complete)
            return found[0] if found else None

        return wait_until(next_line, timeout, "a counters line after SIGUSR1", interval=0.002)

    def exit_counters(self):
        found = self._counters_in(self.log())
        if not found:
            raise AssertionError(f"no counters line in the server's stderr\n{self.log_tail()}")
        return found[-1]

    def wait_counters(self, cond, timeout, what):
        """Polls the counters (SIGUSR1) until cond(counters) holds; returns them."""
        last = {}

        def check():
            c = self.counters()
            last["c"] = c
            return c if cond(c) else None
        try:
            return wait_until(check, timeout, what, interval=0.02)
        except AssertionError as e:
            raise AssertionError(f"{e}; last counters: {last.get('c')}") from None


def closed_sum(c):
    return sum(c["closed"].values())


def assert_counters_consistent(test, c):
    """accepted == open + sum(closed), every reason present and known."""
    test.assertEqual(set(c["closed"]), set(REASONS), f"close reasons in {c}")
    test.assertEqual(c["accepted"], c["open"] + closed_sum(c),
                     f"accepted != open + sum(closed) in {c}")


# ---------------------------------------------------------------------------- clients

def recv_exactly(sock, n, timeout=20):
    """Reads n bytes (fewer only if EOF comes first)."""
    sock.settimeout(timeout)
    chunks, got = [], 0
    while got < n:
        b = sock.recv(min(1 << 20, n - got))
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv_to_eof(sock, timeout=20):
    """Reads until EOF; returns the bytes. Raises socket.timeout if no EOF in time."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        b = sock.recv(1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


_BLOCKS = {}


def pattern(n, seed=0):
    """n bytes whose period (65521, a prime) is long enough to reveal reordering."""
    block = _BLOCKS.get(seed)
    if block is None:
        block = _BLOCKS[seed] = bytes((i * 7 + seed + (i >> 8) * 13) & 0xFF
                                      for i in range(65521))
    reps = n // len(block) + 1
    return (block * reps)[:n]


def send_until_blocked(sock, limit, stall=0.5, chunk=1 << 16, data_seed=0):
    """Sends without reading until the socket stays unwritable for `stall` seconds (the
    server stopped reading) or `limit` bytes went out. Returns the bytes sent."""
    import select
    sock.setblocking(False)
    buf = pattern(chunk + 65521, data_seed)
    sent = bytearray()
    try:
        while len(sent) < limit:
            off = len(sent) % 65521
            piece = buf[off:off + min(chunk, limit - len(sent))]
            try:
                n = sock.send(piece)
                sent += piece[:n]
            except BlockingIOError:
                _, w, _ = select.select([], [sock], [], stall)
                if not w:
                    break
    finally:
        sock.setblocking(True)
    return bytes(sent)


def unacked(sock):
    """Bytes in sock's send queue not yet acknowledged by the peer (SIOCOUTQ)."""
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def unread(sock):
    """Bytes in sock's receive queue not read yet (SIOCINQ; still answered after an RST),
    or -1 if the ioctl fails."""
    import fcntl
    import termios
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    except OSError:
        return -1


def fill_until_paused(srv, sock, watermark, chunk=16 << 10, limit=256 << 20, data_seed=0):
    """Sends without reading, one chunk at a time, each acknowledged by the server's kernel
    before the next, until the server holds at least `watermark` bytes of echo (it has
    paused reading). Unlike send_until_blocked, nothing is left in the client's send queue,
    so a FIN sent next reaches the server at once, while it is not reading.
    Returns the bytes sent."""
    base = srv.counters()
    buf = pattern(chunk + 65521, data_seed)
    sent = bytearray()
    sock.settimeout(5)
    while len(sent) < limit:
        off = len(sent) % 65521
        piece = buf[off:off + chunk]
        sock.sendall(piece)
        sent += piece
        wait_until(lambda: unacked(sock) == 0, 5,
                   f"the server's kernel to take the data ({len(sent)} bytes sent): its "
                   "receive buffer is full before the server paused")
        if len(sent) % (4 * chunk) == 0:
            c = srv.counters()
            held = (c["bytes_in"] - base["bytes_in"]) - (c["bytes_out"] - base["bytes_out"])
            if held >= watermark:
                return bytes(sent)
    raise AssertionError(f"the server never paused reading ({len(sent)} bytes sent)")


class ServerTest(unittest.TestCase):
    """Base class: start_server(), connect(), all cleaned up."""

    def start_server(self, **kw):
        return Server(self, **kw).start()

    def start_server_in(self, pair, **kw):
        """A server in pair's server namespace, on its address (netns.Pair), port 0."""
        srv = Server(self, listen=f"{pair.srv_ip}:0", **kw)
        srv.cmd = pair.exec_prefix("srv") + srv.cmd
        return srv.start()

    def connect(self, port, host="127.0.0.1", timeout=10):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(timeout)
        s.connect((host, port))
        return s

    def echo_once(self, s, data=b"ping\n", timeout=10):
        s.sendall(data)
        got = recv_exactly(s, len(data), timeout)
        self.assertEqual(got, data, "echo differs")

    def require_ss(self):
        if not have_ss():
            self.skipTest("ss (iproute2) is not installed")


def reset_close(sock):
    """close() with SO_LINGER {1, 0}: the kernel sends RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def reader_thread(sock, n, timeout=30):
    """Starts a thread reading n bytes from sock; returns (thread, result dict)."""
    res = {}

    def run():
        try:
            res["data"] = recv_exactly(sock, n, timeout)
        except Exception as e:  # reported by the test
            res["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, res
