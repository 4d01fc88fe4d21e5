#!/usr/bin/env python3
"""make demo: the same clients against a leaky and a correct echo-server, side by side.

Each server gets N connections that echo one message and close (the `close` scenario);
then the sockets on both ends are counted by state with `ss`, and each server's own
counters are read (SIGUSR1). Leaky mode ignores recv()==0: its sockets stay in CLOSE_WAIT
and the client's in FIN_WAIT_2. Everything started here is stopped before it exits."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "bin", "echo-server")
N = int(os.environ.get("DEMO_CONNECTIONS", "1000"))


def start(mode, tmp):
    port_file = os.path.join(tmp, f"{mode}.port")
    log = open(os.path.join(tmp, f"{mode}.log"), "w+")
    p = subprocess.Popen([SERVER, "--mode", mode, "--listen", "127.0.0.1:0",
                          "--port-file", port_file], stderr=log)
    deadline = time.monotonic() + 5
    while not os.path.exists(port_file):
        if time.monotonic() > deadline or p.poll() is not None:
            sys.exit(f"demo: the {mode} server did not start")
        time.sleep(0.02)
    return p, int(open(port_file).read()), log


def drive(port):
    """N clients: connect, echo, close. Returns (established, failed)."""
    ok = failed = 0
    for i in range(N):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                msg = b"hello %d\n" % i
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    if not chunk:
                        break
                    got += chunk
                ok += got == msg
                failed += got != msg
        except OSError:
            failed += 1
    return ok, failed


def count(state, filt):
    out = subprocess.run(["ss", "-tanH", "state", state, filt], capture_output=True,
                         text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def counters(p, log):
    log.seek(0, os.SEEK_END)
    start_at = log.tell()
    p.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        log.seek(start_at)
        m = re.search(r"counters (\{.*\})", log.read())
        if m:
            return json.loads(m.group(1))
        time.sleep(0.02)
    return {}


def settle(port):
    """Waits until no client socket of this port is still in FIN_WAIT_1 (the FINs have
    been acknowledged): the counts below are then stable."""
    deadline = time.monotonic() + 5
    while count("fin-wait-1", f"( dport = :{port} )") and time.monotonic() < deadline:
        time.sleep(0.05)


def main():
    print(f"kernel {os.uname().release}; {N} connections per server: echo one message, close")
    rows = {}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for mode in ("leaky", "correct"):
                p, port, log = start(mode, tmp)
                procs.append(p)
                ok, failed = drive(port)
                settle(port)
                c = counters(p, log)
                fds = len(os.listdir(f"/proc/{p.pid}/fd"))
                rows[mode] = [ok, failed,
                              count("close-wait", f"( sport = :{port} )"),
                              count("established", f"( sport = :{port} )"),
                              count("fin-wait-2", f"( dport = :{port} )"),
                              count("time-wait", f"( dport = :{port} )"),
                              c.get("open", "?"), fds,
                              ",".join(f"{k}={v}" for k, v in c.get("closed", {}).items() if v)
                              or "-"]
        finally:
            for p in procs:
                p.send_signal(signal.SIGKILL)
                p.wait()
    labels = ["established (echo ok)", "failed", "server CLOSE_WAIT", "server ESTABLISHED",
              "client FIN_WAIT_2", "client TIME_WAIT", "server open connections",
              "server open fds", "server close reasons"]
    print(f"{'':26}{'leaky':>14}{'correct':>22}")
    for i, label in enumerate(labels):
        print(f"{label:26}{str(rows['leaky'][i]):>14}{str(rows['correct'][i]):>22}")
    print("\nleaky: the server ignored recv()==0, so its sockets wait in CLOSE_WAIT forever and\n"
          "the clients' in FIN_WAIT_2 (until net.ipv4.tcp_fin_timeout, 60 s, orphans them).\n"
          "correct: the server closed each socket right after the client's FIN; the client,\n"
          "which closed first, holds TIME_WAIT for 60 s, as TCP requires of the active closer.")
    ok = rows["correct"][2] == 0 and rows["leaky"][2] == N
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
