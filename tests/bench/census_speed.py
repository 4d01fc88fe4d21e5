#!/usr/bin/env python3
"""Census speed: `load-client states --port P` with 100k+ sockets on one port.

Not part of `make test`. Run as root from the repository root after `make`:
    python3 tests/bench/census_speed.py [CHILDREN [PAIRS_PER_CHILD]]
It creates a private network namespace (deleted at the end), and inside it CHILDREN
processes (default 12) that each hold PAIRS_PER_CHILD (default 8500) connected loopback
pairs to one listener (18000 fds each: the per-process limit here is 20000), i.e. 102,000
sockets whose local port is P and 102,000 whose remote port is P. It then times the census
of each side seven times (load-client's own timing of the netlink dump, and the whole
command), and `ss` for comparison, and prints the medians.

The kernel's socket tables are shared by all namespaces: the time also depends on the
sockets the rest of the host holds."""
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(REPO, "bin", "load-client")
IP_BIND_ADDRESS_NO_PORT = 24


def hold_pairs(lst, port, child, pairs, ready_fd):
    keep = []
    for i in range(pairs):
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        # 8 source addresses: 102k connections to one destination need more than the
        # ~28k ephemeral ports of one source.
        s.bind((f"127.0.0.{2 + (child * pairs + i) % 8}", 0))
        s.connect(("127.0.0.1", port))
        keep.append(s)
        keep.append(lst.accept()[0])
    os.write(ready_fd, b"x")
    signal.pause()


def measure(children, pairs):
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4096)
    port = lst.getsockname()[1]
    rd, wr = os.pipe()
    kids = []
    t0 = time.monotonic()
    try:
        for c in range(children):
            pid = os.fork()
            if pid == 0:
                os.close(rd)
                try:
                    hold_pairs(lst, port, c, pairs, wr)
                finally:
                    os._exit(0)
            kids.append(pid)
        os.close(wr)
        got = 0
        while got < children:
            b = os.read(rd, 100)
            if not b:
                raise SystemExit("a child failed to build its connections")
            got += len(b)
        print(f"{children * pairs} connected pairs in {time.monotonic() - t0:.1f} s", flush=True)
        res = {"local": [], "remote": [], "command": []}
        for _ in range(7):
            t = time.monotonic()
            out = subprocess.run([BIN, "states", "--port", str(port), "--json"],
                                 capture_output=True, text=True, check=True).stdout
            res["command"].append((time.monotonic() - t) * 1000)
            d = json.loads(out)
            res["local"].append(d["local"]["elapsed_us"] / 1000)
            res["remote"].append(d["remote"]["elapsed_us"] / 1000)
        print(f"census: local side {d['local']['total']} sockets "
              f"({d['local']['states']['established']} ESTABLISHED), remote side "
              f"{d['remote']['total']}")
        for k, v in res.items():
            print(f"  {k:8} median {statistics.median(v):6.1f} ms  min {min(v):6.1f}  "
                  f"max {max(v):6.1f}")
        t = time.monotonic()
        n = len(subprocess.run(["ss", "-tanH", f"( sport = :{port} )"], capture_output=True,
                               text=True).stdout.splitlines())
        print(f"  ss -tanH '( sport = :{port} )': {n} lines in "
              f"{(time.monotonic() - t) * 1000:.0f} ms")
    finally:
        for k in kids:
            os.kill(k, signal.SIGKILL)
        for k in kids:
            os.waitpid(k, 0)


def main():
    args = [int(a) for a in sys.argv[1:3]]
    if os.environ.get("TD_CENSUS_NS"):
        measure(*(args or [12, 8500]))
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (a private network namespace)")
    ns = f"tdcensus{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        env = dict(os.environ, TD_CENSUS_NS=ns)
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__)]
                       + sys.argv[1:3], check=True, env=env)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
