#!/usr/bin/env python3
"""make demo: the same load against a leaky and a correct echo-server, side by side.

Both servers run at once, each driven by bin/load-client with ~2,000 connections in four
behaviours (echo, close, idle with heartbeats, silent). The client's --timeline samples
the socket states on both ends once a second; at the end the demo prints the two modes
side by side, with each server's own counters and open fds, and a chart of CLOSE_WAIT
over time (a PNG too, when gnuplot is installed).

As root it runs inside a private network namespace, so deleting the namespace also
removes every socket left behind (TIME_WAIT, FIN_WAIT_2, the leaky server's CLOSE_WAIT).
Everything it starts is stopped before it exits."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "bin", "echo-server")
CLIENT = os.path.join(ROOT, "bin", "load-client")
N = int(os.environ.get("DEMO_CONNECTIONS", "2000"))
HOLD = os.environ.get("DEMO_HOLD", "8s")
# The correct server's heartbeat is short here so the silent clients are seen to go.
CORRECT_SETS = ["--set", "heartbeat_timeout=3s"]
PLOT = os.path.join(ROOT, "build", "demo-close-wait.png")


def start_server(mode, tmp):
    port_file = os.path.join(tmp, f"{mode}.port")
    log = open(os.path.join(tmp, f"{mode}.log"), "w+")
    extra = CORRECT_SETS if mode == "correct" else []
    p = subprocess.Popen([SERVER, "--mode", mode, "--listen", "127.0.0.1:0",
                          "--port-file", port_file] + extra, stderr=log)
    deadline = time.monotonic() + 5
    while not os.path.exists(port_file):
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError(f"the {mode} server did not start")
        time.sleep(0.02)
    return p, int(open(port_file).read()), log


def start_client(port, tmp, mode):
    out = open(os.path.join(tmp, f"{mode}.json"), "w")
    cmd = [CLIENT, "--server", f"127.0.0.1:{port}", "--connections", str(N),
           "--mix", "echo=25,close=25,idle=25,silent=25", "--hold", HOLD, "--heartbeat", "1s",
           "--rate", "2000", "--timeline", os.path.join(tmp, f"{mode}.csv"), "--json",
           "--quiet"]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL), out


def counters(p, log):
    log.seek(0, os.SEEK_END)
    start_at = log.tell()
    p.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        log.seek(start_at)
        m = re.search(r"counters (\{.*\})\n", log.read())
        if m:
            return json.loads(m.group(1))
        time.sleep(0.02)
    return {}


def timeline(path):
    with open(path) as f:
        return [(float(r["time_s"]), int(r["server_close_wait"])) for r in csv.DictReader(f)]


def text_chart(series):
    """CLOSE_WAIT on the server over time, one row per second, both modes."""
    top = max([v for s in series.values() for _, v in s] + [1])
    width = 30
    lines = [f"{'t (s)':>6}  {'leaky':<{width + 7}}  correct"]
    rows = max(len(s) for s in series.values())
    for i in range(rows):
        cells = []
        for mode in ("leaky", "correct"):
            t, v = series[mode][i] if i < len(series[mode]) else (None, 0)
            cells.append(f"{'#' * round(width * v / top):<{width}} {v:>5}")
        t = series["leaky"][i][0] if i < len(series["leaky"]) else series["correct"][i][0]
        lines.append(f"{t:>6.0f}  {cells[0]}  {cells[1]}")
    return "\n".join(lines)


def gnuplot(series, tmp):
    if shutil.which("gnuplot") is None:
        return "gnuplot is not installed: text chart only"
    data = os.path.join(tmp, "cw.dat")
    with open(data, "w") as f:
        for mode in ("leaky", "correct"):
            f.write(f"# {mode}\n")
            for t, v in series[mode]:
                f.write(f"{t} {v}\n")
            f.write("\n\n")
    os.makedirs(os.path.dirname(PLOT), exist_ok=True)
    script = (f"set terminal png noenhanced size 800,400; set output '{PLOT}';"
              "set title 'CLOSE_WAIT sockets on the server port';"
              "set xlabel 'seconds'; set ylabel 'sockets'; set key top left; set grid;"
              f"plot '{data}' index 0 with steps lw 2 title 'leaky',"
              f" '{data}' index 1 with steps lw 2 title 'correct'")
    p = subprocess.run(["gnuplot", "-e", script], capture_output=True, text=True)
    return f"plot: {PLOT}" if p.returncode == 0 else f"gnuplot failed: {p.stderr.strip()}"


def row_values(mode, tmp, srv_counters, fds):
    r = json.load(open(os.path.join(tmp, f"{mode}.json")))
    cen = r["census"]
    closed = srv_counters.get("closed", {})
    return [r["counts"]["established"], r["counts"]["failed"],
            cen["server"]["states"]["close_wait"], cen["client"]["states"]["fin_wait2"],
            cen["client"]["states"]["time_wait"], srv_counters.get("open", "?"), fds,
            ", ".join(f"{k} {v}" for k, v in closed.items() if v) or "none"]


def run(tmp):
    procs, rows, series = [], {}, {}
    try:
        servers = {m: start_server(m, tmp) for m in ("leaky", "correct")}
        procs += [s[0] for s in servers.values()]
        clients = {m: start_client(servers[m][1], tmp, m) for m in servers}
        procs += [c[0] for c in clients.values()]
        print(f"{N} connections per server (25% each: echo, close, idle with a heartbeat "
              f"every 1 s, silent), held {HOLD}; correct mode with heartbeat_timeout=3s",
              flush=True)
        for m, (p, out) in clients.items():
            p.wait(timeout=120)
            out.close()
        for m, (p, port, log) in servers.items():
            fds = len(os.listdir(f"/proc/{p.pid}/fd"))
            rows[m] = row_values(m, tmp, counters(p, log), fds)
            series[m] = timeline(os.path.join(tmp, f"{m}.csv"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
    labels = ["established", "failed", "server CLOSE_WAIT", "client FIN_WAIT_2",
              "client TIME_WAIT", "server open connections", "server open fds",
              "server close reasons"]
    print(f"\n{'at the end':26}{'leaky':>22}   {'correct'}")
    for i, label in enumerate(labels):
        print(f"{label:26}{str(rows['leaky'][i]):>22}   {rows['correct'][i]}")
    print("\nCLOSE_WAIT on the server over time:\n" + text_chart(series))
    print(gnuplot(series, tmp))
    print("\nleaky ignores recv()==0: every connection the clients closed stays in CLOSE_WAIT\n"
          "on the server (holding an fd) and in FIN_WAIT_2 on the client. correct closes\n"
          "right after each FIN, closes silent clients after heartbeat_timeout, and leaves\n"
          "only TIME_WAIT, on the client, which closed first.")
    return 0 if rows["correct"][2] == 0 and rows["leaky"][2] > 0 else 1


def main():
    if os.geteuid() == 0 and os.environ.get("TEARDOWN_DEMO_NS") is None:
        ns = f"tddemo{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            env = dict(os.environ, TEARDOWN_DEMO_NS=ns)
            print(f"running in network namespace {ns} (deleted at the end, with every "
                  "socket left in it)", flush=True)
            return subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                                   os.path.abspath(__file__)], env=env).returncode
        finally:
            subprocess.run(["ip", "netns", "del", ns])
    if os.environ.get("TEARDOWN_DEMO_NS") is None:
        print("not root: running on the host's loopback. The client's TIME_WAIT sockets "
              "stay for 60 s and its FIN_WAIT_2 sockets for net.ipv4.tcp_fin_timeout "
              "(60 s) after the demo; the servers are stopped, so no CLOSE_WAIT remains.")
    with tempfile.TemporaryDirectory() as tmp:
        return run(tmp)


if __name__ == "__main__":
    sys.exit(main())
