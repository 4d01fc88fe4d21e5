# Goal of this test: shared helpers for the reload and upgrade tests (not a test itself).
"""Helpers: the pids of a server's generations, from its log, and their cleanup."""
import os
import re
import signal
import socket
import subprocess

from harness import wait_until

NEW_GEN = re.compile(r"starting a new generation: .* \(pid (\d+)\)$")


def new_generations(test, srv):
    """The pids of the new generations srv's log names; each is killed by a cleanup."""
    pids = []
    for _, _, _, text in srv.log_lines():
        m = NEW_GEN.search(text)
        if m:
            pids.append(int(m.group(1)))
    for pid in pids:
        test.addCleanup(kill_tree, pid)
    return pids


def kill_tree(pid):
    """SIGKILL to pid and its children (a new generation outlives the test's server)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    for p in [pid] + [int(x) for x in out.split()]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def listener_inodes(port):
    """The inodes of the listening sockets on port (ss -ltne): the same inode is the same
    socket, whichever process holds it."""
    out = subprocess.run(["ss", "-Hltne", f"( sport = :{port} )"], capture_output=True,
                         text=True).stdout
    return sorted(int(m) for m in re.findall(r"ino:(\d+)", out))


def echo(port, data=b"ping", timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("EOF before the echo")
            got += chunk
        return got


def wait_log(srv, contains, timeout=15, level=None):
    return wait_until(lambda: srv.log_lines(level=level, contains=contains), timeout,
                      f"a log line with {contains!r}")
