# Goal of this test: the load client's vanish scenario, run in a network namespace of its own, drops every packet of its connections so a server with heartbeat_timeout=2s closes each with reason heartbeat about 2 s after the vanish, deletes its nftables rules at exit, and refuses to run in the initial network namespace.
"""The server and the client run in two namespaces joined by a veth pair (netns.Pair),
deleted after the test whatever happens (addCleanup before anything can fail; a later
cleanup checks they are gone). The detection time is the server's own log timestamp of
each close minus the client's wall-clock time of the vanish."""
import os
import subprocess

import netns
from harness import Server, ServerTest, wait_until
from test_client_helpers import run_client

N = 20
BUDGET = 2.0  # heartbeat_timeout
# Only the heartbeat: keepalive and the user timeout are far away or off.
SETS = {"heartbeat_timeout": "2s", "keepalive": "no", "user_timeout": "0",
        "log_level": "debug"}
NET_INIT_INO = 0xEFFFFFF9  # the initial namespace's fixed inode (kernels since 6.x)


def in_initial_netns():
    """True when this process is in the initial network namespace (pid 1's; or
    kthreadd's where pid 1's cannot be read), None when that cannot be told."""
    me = os.stat("/proc/self/ns/net")
    if me.st_ino == NET_INIT_INO:
        return True
    for ref in ("/proc/1/ns/net", "/proc/2/ns/net"):
        try:
            if ref.startswith("/proc/2/"):
                with open("/proc/2/comm") as f:
                    if f.read() != "kthreadd\n":
                        continue
            other = os.stat(ref)
        except OSError:
            continue
        return (me.st_dev, me.st_ino) == (other.st_dev, other.st_ino)
    return None


def nft_tables(prefix=()):
    p = subprocess.run(list(prefix) + ["nft", "list", "tables"], capture_output=True,
                       text=True)
    return [line for line in p.stdout.splitlines() if "load_client_" in line]


class ClientVanishTest(ServerTest):
    def pair(self):
        netns.require_root(self)
        return netns.new_pair(self)  # its cleanup checks the namespaces are gone

    def test_vanish_closed_by_heartbeat(self):
        pair = self.pair()
        srv = self.start_server_in(pair, sets=SETS)
        # --hold outlasts the heartbeat: until it ends the server hears nothing at all.
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", N,
                                "--scenario", "vanish", "--hold", "3500ms", "--procs", 2,
                                "--settle", "0", "--json", "--expect", f"vanished={N}",
                                "--expect", f"completed={N}", "--expect", "client.total=0"],
                         prefix=pair.exec_prefix("cli"))
        self.assertEqual(run.rc, 0, str(run))
        dead = run.doc["dead_peers"]
        first = dead["vanish"]["first_unix_us"] / 1e6
        spread = (dead["vanish"]["last_unix_us"] - dead["vanish"]["first_unix_us"]) / 1e3
        c = srv.wait_counters(lambda c: c["closed"]["heartbeat"] >= N, 5,
                              f"{N} closes with reason heartbeat")
        self.assertEqual(c["closed"]["heartbeat"], N, c)
        self.assertEqual(c["accepted"], N, c)
        log = [(f["time"], f["reason"]) for f in srv.close_lines()]
        took = [t - first for t, _ in log]
        print(f"vanish: {dead['vanish']['count']} vanished within {spread:.1f} ms; server "
              f"closed them {min(took):.2f} .. {max(took):.2f} s later (budget "
              f"{BUDGET:.1f} s: heartbeat_timeout), reasons {sorted({r for _, r in log})}; "
              f"dropped {dead['dropped_from_server']} packets from the server, "
              f"{dead['dropped_to_server']} to it")
        self.assertEqual({r for _, r in log}, {"heartbeat"})
        self.assertEqual(len(took), N)
        self.assertGreaterEqual(min(took), BUDGET * 0.8)
        self.assertLessEqual(max(took), BUDGET * 1.2)
        # The server's closes (reset_dead_peers: an RST each) met the drop rules.
        self.assertGreaterEqual(dead["dropped_from_server"], N)
        parts = [p["dead_peers"]["vanish"]["count"] for p in run.doc["procs"]]
        self.assertEqual(sum(parts), N)
        # Its rules are gone with it; so are its sockets.
        self.assertEqual(nft_tables(pair.exec_prefix("cli")), [])
        self.assertEqual(netns.ss_count(pair.cli_ns, srv.port, "all", side="dport"), 0)

    def test_vanish_seen_in_the_server_census(self):
        """Server and client in one namespace: the census of the server's port at the end
        of the run shows its detection (heartbeat 1 s, held 2 s: nothing left)."""
        pair = self.pair()
        srv = Server(self, sets=dict(SETS, heartbeat_timeout="1s"), listen="127.0.0.1:0")
        srv.cmd = pair.exec_prefix("cli") + srv.cmd
        srv.start()
        run = run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--connections", N,
                                "--scenario", "vanish", "--hold", "2s", "--settle", "0",
                                "--json", "--expect", f"vanished={N}",
                                "--expect", "server.established=0",
                                "--expect", "server.total=1"],
                         prefix=pair.exec_prefix("cli"))
        print(f"vanish on loopback: server census {run.doc['census']['server']['states']}, "
              f"dropped {run.doc['dead_peers']['dropped_from_server']} from the server")
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(srv.counters()["closed"]["heartbeat"], N)

    def test_refused_in_the_initial_namespace(self):
        netns.require_root(self)
        initial = in_initial_netns()
        if initial is None:
            self.skipTest("cannot tell whether the tests run in the initial network namespace")
        if not initial:
            self.skipTest("the tests do not run in the initial network namespace")
        before = nft_tables()
        run = run_client(self, ["--server", "127.0.0.1:9", "--scenario", "vanish", "--json"],
                         timeout=20)
        print(f"vanish in the initial namespace -> exit {run.rc}: {run.err.strip()}")
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("initial network namespace", run.err)
        self.assertEqual(run.out, "")
        self.assertEqual(nft_tables(), before)
