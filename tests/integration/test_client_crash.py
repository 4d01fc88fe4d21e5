# Goal of this test: the load client's crash scenario removes its sockets without FIN or RST, so a server with keepalive idle=2s closes each of them with reason reset about 2 s after the crash (its first probe meets an RST), crash connections in a mix keep a source address of their own, the report counts and times the crashes (merged across --procs and `merge`), and without CAP_NET_ADMIN the scenario is skipped with exit 3.
"""Runs in the test's own network namespace (loopback): crash needs CAP_NET_ADMIN but no
namespace. The detection time is the server's own log timestamp of each close minus the
client's wall-clock time of the crash (both clocks are this host's)."""
import os
import socket
import tempfile
import unittest

from harness import ServerTest, wait_until
from test_client_helpers import run_client, server_addr

N = 20  # crash connections per run
TCP_REPAIR = 19
KEEPALIVE = {"keepalive": "yes", "keepalive_idle": "2s", "keepalive_interval": "1s",
             "keepalive_count": "3", "heartbeat_timeout": "0", "user_timeout": "0",
             "log_level": "debug"}
BUDGET = 2.0  # the first keepalive probe, answered by RST


def require_repair():
    """Skips unless this process may use TCP_REPAIR (CAP_NET_ADMIN)."""
    with socket.socket() as s:
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        except PermissionError:
            raise unittest.SkipTest("needs root/CAP_NET_ADMIN (TCP_REPAIR)")


def closes(srv):
    """(Unix time, peer address, reason) of every close the server logged."""
    return [(f["time"], f["peer"].rsplit(":", 1)[0], f["reason"]) for f in srv.close_lines()]


class ClientCrashTest(ServerTest):
    def write(self, text):
        fd, path = tempfile.mkstemp(prefix="teardown-crash-", suffix=".json")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_crash_answered_by_rst(self):
        require_repair()
        srv = self.start_server(sets=KEEPALIVE)
        # A pure crash run from 127.0.0.4, then a mix (2 echo : 1 crash, so both workers run
        # both) whose crash connections take the last of --sources (127.0.0.3) while its
        # echo connections use 127.0.0.2.
        pure = run_client(self, ["--server", server_addr(srv), "--connections", N,
                                 "--scenario", "crash", "--messages", 2, "--sources",
                                 "127.0.0.4", "--settle", "0", "--json",
                                 "--expect", f"crashed={N}", "--expect", f"completed={N}",
                                 "--expect", "client.total=0",
                                 "--expect", f"server.established={N}"])
        mix = run_client(self, ["--server", server_addr(srv), "--connections", 3 * N,
                                "--mix", "echo=2,crash=1", "--messages", 2, "--procs", 2,
                                "--sources", "127.0.0.2-127.0.0.3", "--settle", "0",
                                "--json", "--expect", f"crashed={N}"])
        for run in (pure, mix):
            self.assertEqual(run.rc, 0, str(run))
            self.assertEqual(run.counts()["failed"], 0, str(run))
        # The server saw neither FIN nor RST: every crashed socket was still ESTABLISHED
        # there, and nothing was left on the client (no TIME_WAIT, no FIN_WAIT).
        self.assertEqual(pure.expectation(f"server.established={N}")["result"], "ok")
        self.assertEqual(pure.expectation("client.total=0")["result"], "ok")

        c = srv.wait_counters(lambda c: c["closed"]["reset"] >= 2 * N, BUDGET * 1.2 + 8,
                              f"{2 * N} closes with reason reset")
        self.assertEqual(c["closed"]["reset"], 2 * N, c)
        self.assertEqual(c["closed"]["eof"], 2 * N, c)  # the mix's echo connections
        self.assertEqual(c["open"], 0, c)
        log = wait_until(lambda: len(closes(srv)) >= 4 * N and closes(srv), 5,
                         "every close in the server's debug log")
        for run, source in ((pure, "127.0.0.4"), (mix, "127.0.0.3")):
            dead = run.doc["dead_peers"]["crash"]
            first, last = dead["first_unix_us"] / 1e6, dead["last_unix_us"] / 1e6
            took = [t - first for t, peer, reason in log if peer == source]
            reasons = {reason for t, peer, reason in log if peer == source}
            print(f"crash from {source}: {dead['count']} crashed within "
                  f"{(last - first) * 1000:.1f} ms; server closed them {min(took):.2f} .. "
                  f"{max(took):.2f} s later (budget {BUDGET:.1f} s: the first keepalive "
                  f"probe), reasons {sorted(reasons)}")
            self.assertEqual(dead["count"], N)
            self.assertEqual(len(took), N, f"closes from {source}: {log}")
            self.assertEqual(reasons, {"reset"})
            self.assertGreaterEqual(min(took), BUDGET * 0.8 - (last - first))
            self.assertLessEqual(max(took), BUDGET * 1.2)
        echo_peers = {peer for t, peer, reason in log if reason == "eof"}
        self.assertEqual(echo_peers, {"127.0.0.2"}, "the mix's echo connections' sources")

        # --procs: the workers' crashes add up, the earliest first and the latest last.
        parts = [p["dead_peers"]["crash"] for p in mix.doc["procs"]]
        self.assertEqual(sum(p["count"] for p in parts), N)
        self.assertTrue(all(p["count"] > 0 for p in parts), parts)
        self.assertEqual(mix.doc["dead_peers"]["crash"]["first_unix_us"],
                         min(p["first_unix_us"] for p in parts))
        self.assertEqual(mix.doc["dead_peers"]["crash"]["last_unix_us"],
                         max(p["last_unix_us"] for p in parts))
        # merge: the same for results of separate runs.
        m = run_client(self, ["merge", self.write(pure.out), self.write(mix.out), "--json",
                              "--expect", f"crashed={2 * N}"])
        self.assertEqual(m.rc, 0, str(m))
        both = (pure.doc["dead_peers"]["crash"], mix.doc["dead_peers"]["crash"])
        self.assertEqual(m.doc["dead_peers"]["crash"]["first_unix_us"],
                         min(d["first_unix_us"] for d in both))
        self.assertEqual(m.doc["dead_peers"]["crash"]["last_unix_us"],
                         max(d["last_unix_us"] for d in both))
        self.assertEqual(m.doc["by_scenario"]["crash"], 2 * N)

    def test_without_cap_net_admin_skipped(self):
        """Without CAP_NET_ADMIN neither scenario is faked: it says so, exit 3."""
        prefix = []
        if os.geteuid() == 0:
            prefix = ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"]
            if not any(os.access(os.path.join(d, "setpriv"), os.X_OK)
                       for d in os.environ.get("PATH", "").split(os.pathsep)):
                self.skipTest("needs setpriv (util-linux) to drop CAP_NET_ADMIN as root")
        for name in ("crash", "vanish"):
            with self.subTest(scenario=name):
                run = run_client(self, ["--server", "127.0.0.1:9", "--scenario", name,
                                        "--json"], timeout=20, prefix=prefix)
                print(f"{name} without CAP_NET_ADMIN -> exit {run.rc}: {run.err.strip()}")
                self.assertEqual(run.rc, 3, str(run))
                self.assertIn("skipped: needs CAP_NET_ADMIN", run.err)
                self.assertEqual(run.out, "")
