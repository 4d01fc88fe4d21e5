#!/usr/bin/env python3
"""make check-valgrind: a short scenario against bin/echo-server under valgrind memcheck;
fails on any definitely-lost byte or memory error.

The scenario touches every close path that allocates: echo, peer close, half-close with
queued echo, reset while paused, heartbeat, and the graceful drain with a peer still open."""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("check-valgrind: the server did not start")
        time.sleep(0.05)
    return int(open(path).read())


def scenario(port):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"hello\n")
            assert s.recv(16) == b"hello\n"
    with socket.create_connection(("127.0.0.1", port)) as s:      # half-close
        s.sendall(b"x" * 300000)
        s.shutdown(socket.SHUT_WR)
        got = 0
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        assert got == 300000, got
    s = socket.create_connection(("127.0.0.1", port))              # reset while paused
    s.setblocking(False)
    try:
        for _ in range(1000):
            s.send(b"y" * 65536)
    except BlockingIOError:
        pass
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    silent = socket.create_connection(("127.0.0.1", port))         # heartbeat resets it
    silent.settimeout(10)
    try:
        assert silent.recv(1) == b""
    except ConnectionResetError:
        pass  # reset_dead_peers=yes: a heartbeat close sends RST
    silent.close()
    return socket.create_connection(("127.0.0.1", port))           # open through the drain


def main():
    with tempfile.TemporaryDirectory() as tmp:
        port_file, log = os.path.join(tmp, "port"), os.path.join(tmp, "valgrind.log")
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--error-exitcode=99", f"--log-file={log}",
               os.path.join(ROOT, "bin", "echo-server"), "--listen", "127.0.0.1:0",
               "--port-file", port_file, "--set", "heartbeat_timeout=1s",
               "--set", "shutdown_timeout=1s"]
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            port = wait_for(port_file, proc)
            last = scenario(port)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            last.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = open(log).read()
        m = re.search(r"definitely lost: ([\d,]+) bytes", text)
        lost = m.group(1) if m else "0"
        errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        print(f"check-valgrind: exit {code}, definitely lost {lost} bytes, "
              f"{errors.group(1) if errors else '?'} errors")
        if code != 0 or lost != "0" or (errors and errors.group(1) != "0"):
            print(text[-4000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
