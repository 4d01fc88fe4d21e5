# Goal of this test: under churn from the load client (mixed echo, close, half-close and idle with --reconnect, every echo checked), 20 reloads alternating valid and invalid configs, a reload changing workers 2 -> 3 -> 2 and 5 binary upgrades refuse and reset nothing and mismatch no echo, the listeners are the same sockets (SO_COOKIE) after all 5 upgrades; a naive restart (SIGTERM, then start again) under the same load is measured beside it.
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import netns
from harness import Server, ServerTest, wait_until
from lifecycle import alive, children, new_generations
from test_client_helpers import run_client

SECONDS = int(os.environ.get("LIFECYCLE_SECONDS", "40"))
LOAD = ["--scenario", "mixed", "--mix", "echo=30,close=40,half-close=20,idle=10",
        "--connections", 300, "--rate", "1500/s", "--messages", 5, "--heartbeat", "500ms",
        "--reconnect", "--reconnect-delay", "50ms", "--settle", "0", "--json", "--quiet"]
READY = re.compile(r"the new generation \(pid (\d+)\) is ready after (\d+)ms")


def cookies(ns, port):
    """The socket cookies of the port's listeners (ss -e: sk:HEX): the same cookie is the
    same socket, whichever process holds it."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltne", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sorted(re.findall(r"sk:([0-9a-f]+)", out))


class LifecycleChurnTest(ServerTest):
    def setUp(self):
        netns.require_root(self)
        # The workers 3 -> 2 reload closes the leaving worker's socket: its queue moves to
        # the others only with tcp_migrate_req=1 (the server warns when it is off).
        self.ns = netns.new_pair(self, {"net.ipv4.tcp_migrate_req": "1"})
        fd, self.conf = tempfile.mkstemp(prefix="teardown-churn-", suffix=".conf")
        os.close(fd)
        self.addCleanup(os.unlink, self.conf)

    def write(self, text):
        with open(self.conf, "w") as f:
            f.write("shutdown_timeout = 5s\nhandover_timeout = 2s\n" + text)

    def start(self, port=0):
        srv = Server(self, config=self.conf, listen=f"127.0.0.1:{port}",
                     sets={"metrics_listen": "127.0.0.1:0"})
        srv.cmd = self.ns.exec_prefix("srv") + srv.cmd
        return srv.start()

    def load(self, srv, seconds):
        out = {}

        def target():
            try:
                out["run"] = run_client(self, ["--server", f"127.0.0.1:{srv.port}",
                                               "--duration", f"{seconds}s"] + LOAD,
                                        timeout=seconds + 120,
                                        prefix=self.ns.exec_prefix("srv"))
            except AssertionError as e:
                out["error"] = e
        t = threading.Thread(target=target, daemon=True)
        t.start()

        def finish():
            t.join(seconds + 150)
            self.assertFalse(t.is_alive(), "load-client did not finish")
            if "error" in out:
                raise out["error"]
            return out["run"]
        return finish

    def reload(self, master, text, srv, expect):
        before = len(srv.log_lines(contains="reload"))
        self.write(text)
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: len(srv.log_lines(contains="reload")) > before, 15, expect)

    def report(self, what, run):
        c, f = run.counts(), run.doc["failures"]
        print(f"{what}: attempted {c['attempted']}, established {c['established']}, failed "
              f"{c['failed']} {f}, echo mismatches {c['echo_mismatch']}, interrupted "
              f"{c['interrupted']}, closed by server {c['closed_by_server']}, reconnects "
              f"{c['reconnects']}")
        return c, f

    def test_seamless(self):
        self.write("workers = 2\nheartbeat_timeout = 60s\n")
        srv = self.start()
        master = srv.pid
        wait_until(lambda: len(children(master)) == 2, 10, "two workers")
        before = cookies(self.ns.srv_ns, srv.port)
        finish = self.load(srv, SECONDS)
        time.sleep(2)  # the load's ramp: what follows happens under churn
        for i in range(20):
            if i % 2:
                self.reload(master, "workers = 2\nheartbeat_timeout = 60s\nbogus = 1\n", srv,
                            f"invalid reload {i}")
            else:
                self.reload(master, f"workers = 2\nheartbeat_timeout = {60 + i}s\n", srv,
                            f"valid reload {i}")
            time.sleep(0.2)
        failed_reloads = len(srv.log_lines(level="error", contains="reload:"))
        self.reload(master, "workers = 3\nheartbeat_timeout = 60s\n", srv, "workers 3")
        wait_until(lambda: len(children(master)) == 3, 10, "three workers")
        time.sleep(1)
        self.reload(master, "workers = 2\nheartbeat_timeout = 60s\n", srv, "workers 2")
        wait_until(lambda: len(children(master)) == 2, 15, "two workers again")
        after_resize = cookies(self.ns.srv_ns, srv.port)
        handovers = []
        for k in range(5):
            os.kill(master, signal.SIGUSR2)

            def ready():
                for _, pid, _, text in srv.log_lines(contains="is ready after"):
                    m = READY.search(text)
                    if pid == master and m:
                        return int(m.group(1)), int(m.group(2))
                return None
            new, ms = wait_until(ready, 30, f"upgrade {k + 1}")
            new_generations(self, srv)
            handovers.append(ms)
            wait_until(lambda: not alive(master), 30,
                       f"generation {k + 1}'s old master to exit")
            master = new
            time.sleep(1)
        run = finish()
        c, f = self.report("seamless (20 reloads, workers 2-3-2, 5 upgrades)", run)
        final = cookies(self.ns.srv_ns, srv.port)
        print(f"invalid reloads logged {failed_reloads}; handover (new generation ready) "
              f"{handovers} ms; listener cookies {before} -> {after_resize} -> {final}")
        self.assertEqual(failed_reloads, 10)
        self.assertEqual(c["failed"], 0, str(f))
        self.assertEqual(c["echo_mismatch"], 0)
        self.assertEqual(final, after_resize, "the same listening sockets after 5 upgrades")
        self.assertEqual(set(before) & set(final), set(before), "the first two sockets kept")

    def test_naive_restart(self):
        """The contrast: SIGTERM, then a new server on the same port, 5 times."""
        self.write("workers = 2\nheartbeat_timeout = 60s\n")
        srv = self.start()
        port = srv.port
        finish = self.load(srv, SECONDS // 2)
        time.sleep(2)
        for _ in range(5):
            srv.signal(signal.SIGTERM)
            srv.wait_exit(30)
            srv = self.start(port)
            time.sleep(1)
        run = finish()
        c, f = self.report("naive restart (5 times SIGTERM, then start)", run)
        self.assertEqual(c["echo_mismatch"], 0)
