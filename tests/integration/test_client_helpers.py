# Goal of this test: shared helpers for the load-client tests (running bin/load-client, reading its JSON); it holds no test cases itself.
"""Helpers for tests/integration/test_client_*.py and test_census*.py.

The binary under test is $CLIENT_BIN (default bin/load-client, relative to the repository
root), so the same tests can run against build/asan/bin/load-client. Every client process
is killed by a cleanup if it is still running, and a sanitizer report in its stderr fails
the test. Servers come from harness.py (bin/echo-server on port 0)."""
import json
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

from harness import REPO, sanitizer_report, server_env

# Generous for a sanitizer build on a busy 2-core machine; runs end long before.
RUN_TIMEOUT = 60


def client_bin():
    p = Path(os.environ.get("CLIENT_BIN", "bin/load-client"))
    return p if p.is_absolute() else REPO / p


class ClientRun:
    """A finished load-client run: status, stdout, stderr, and the JSON when --json."""

    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err
        self.doc = None
        if "--json" in args and out.strip():
            self.doc = json.loads(out)

    def counts(self):
        return self.doc["counts"]

    def state(self, side, state):
        census = self.doc["census"][side]
        return census["states"][state] if census["visible"] else None

    def expectation(self, text):
        for e in self.doc["expect"]:
            if e["expect"] == text:
                return e
        raise AssertionError(f"no expectation {text!r} in {self.doc['expect']}")

    def __str__(self):
        return (f"load-client {' '.join(self.args)} -> exit {self.rc}\nstdout:\n{self.out[-3000:]}"
                f"\nstderr:\n{self.err[-3000:]}")


def run_client(test, args, timeout=RUN_TIMEOUT, prefix=(), env=None):
    """Runs bin/load-client ARGS to its end (killed by a cleanup if the test fails first);
    env: variables added to its environment."""
    if not client_bin().exists():
        raise AssertionError(f"client binary {client_bin()} does not exist (make bin/load-client)")
    cmd = list(prefix) + [str(client_bin())] + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(server_env(), **(env or {})), cwd=str(REPO),
                            start_new_session=True)

    def kill():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    test.addCleanup(kill)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill()
        out, err = proc.communicate()
        raise AssertionError(f"load-client did not finish within {timeout}s: {cmd}\n{err[-2000:]}")
    run = ClientRun([str(a) for a in args], proc.returncode, out, err)
    mark = sanitizer_report(err)
    if mark:
        raise AssertionError(f"sanitizer report in load-client's stderr ({mark}):\n{err[-4000:]}")
    return run


def server_addr(srv):
    return f"127.0.0.1:{srv.port}"


class ThreadEchoServer:
    """A plain echo server on 127.0.0.1 for tests that need a server's behaviour the
    product does not have (accepting late, stamping arrivals): a thread per connection,
    stopped by a cleanup. accept_delay: seconds between listening and the first accept
    (the kernel completes handshakes meanwhile). A subclass may keep per-connection state
    (on_accept returns it) and see each message as it arrives (on_message)."""

    accept_delay = 0.0

    def __init__(self, test):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        test.addCleanup(self.close)
        threading.Thread(target=self.serve, daemon=True).start()

    def on_accept(self):
        return None

    def on_message(self, state, data):
        pass

    def serve(self):
        self.stop.wait(self.accept_delay)
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            state = self.on_accept()
            threading.Thread(target=self.echo, args=(c, state), daemon=True).start()

    def echo(self, c, state):
        try:
            while True:
                data = c.recv(4096)
                if not data:
                    break
                self.on_message(state, data)
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()
