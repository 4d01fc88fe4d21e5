# Goal of this test: SIGHUP reloads the -c file with the command line's --set on top: an invalid file changes nothing and is one error line with file:line, a valid one is one line naming the changed keys and applies them (a heartbeat_timeout turned on closes an idle new connection), alone and with workers (the parent sends the config; workers ignore SIGHUP), and a reload changing workers 2 -> 3 -> 2 starts and stops workers while the others serve on.
import os
import signal
import socket
import tempfile
import time

from harness import Server, ServerTest, wait_until
from lifecycle import alive, children, echo, wait_log


class ReloadBase(ServerTest):
    def config(self, text):
        if not hasattr(self, "conf"):
            fd, self.conf = tempfile.mkstemp(prefix="teardown-reload-", suffix=".conf")
            os.close(fd)
            self.addCleanup(os.unlink, self.conf)
        with open(self.conf, "w") as f:
            f.write(text)
        return self.conf

    def reload(self, srv, text, expect):
        """Writes the file, sends SIGHUP, returns the new log line that contains expect."""
        def lines_now():
            return [l for l in srv.log_lines(contains="reload: ")
                    if "starting a new generation" not in l[3]]
        before = len(lines_now())
        self.config(text)
        srv.signal(signal.SIGHUP)
        lines = wait_until(lambda: lines_now()[before:], 15, f"a reload line ({expect})")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(expect, lines[0][3])
        return lines[0]


class ReloadTest(ReloadBase):
    def idle_closed_within(self, port, seconds):
        """A new idle connection: True when the server closes it within seconds."""
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
            try:
                return s.recv(16) == b""
            except ConnectionResetError:  # reset_dead_peers: a heartbeat close is an RST
                return True
            except socket.timeout:
                return False

    def check_reloads(self, srv, base=""):
        self.assertFalse(self.idle_closed_within(srv.port, 1.5))
        line = self.reload(srv, base + "heartbeat_timeout = 1s\nbogus = 2\n", "nothing changed")
        print(f"invalid: {line[2]}: {line[3]}")
        self.assertEqual(line[2], "error")
        self.assertIn(f"{self.conf}:{2 + base.count(chr(10))}: bogus", line[3])
        self.assertFalse(self.idle_closed_within(srv.port, 1.5), "the invalid file applied")
        line = self.reload(srv, base + "heartbeat_timeout = 1s\n", "changed heartbeat_timeout")
        print(f"valid: {line[3]}")
        self.assertTrue(self.idle_closed_within(srv.port, 5), "heartbeat_timeout not applied")
        # --set stays on top of the file: the file's log_level is overridden.
        line = self.reload(srv, base + "heartbeat_timeout = 1s\nlog_level = error\n",
                           "nothing changed")

    def test_alone(self):
        srv = Server(self, config=self.config("heartbeat_timeout = 0\n"),
                     sets={"log_level": "info"}).start()
        self.check_reloads(srv)
        self.assertEqual(echo(srv.port), b"ping")

    def test_workers(self):
        srv = Server(self, config=self.config("heartbeat_timeout = 0\nworkers = 2\n"),
                     sets={"log_level": "info"}).start()
        wait_until(lambda: len(children(srv.pid)) == 2, 10, "two workers")
        for w in children(srv.pid):
            os.kill(w, signal.SIGHUP)  # systemctl kill signals every process of the unit
            os.kill(w, signal.SIGUSR2)
        self.check_reloads(srv, "workers = 2\n")
        self.assertTrue(all(alive(w) for w in children(srv.pid)))
        self.assertEqual(len(children(srv.pid)), 2)

    def test_workers_2_3_2(self):
        srv = Server(self, config=self.config("heartbeat_timeout = 0\nworkers = 2\n")).start()
        wait_until(lambda: len(children(srv.pid)) == 2, 10, "two workers")
        first = children(srv.pid)
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        for s in held:
            self.addCleanup(s.close)
            s.sendall(b"a")
            self.assertEqual(s.recv(1), b"a")
        self.reload(srv, "heartbeat_timeout = 0\nworkers = 3\n", "changed workers")
        wait_until(lambda: len(children(srv.pid)) == 3, 10, "three workers")
        self.assertEqual(echo(srv.port), b"ping")
        self.reload(srv, "heartbeat_timeout = 0\nworkers = 2\n", "changed workers")
        wait_until(lambda: len(children(srv.pid)) == 2, 10, "two workers again")
        print(f"workers {first} -> 3 -> {children(srv.pid)}")
        self.assertEqual(children(srv.pid), first, "the first two workers were kept")
        for s in held:
            s.sendall(b"b")
            self.assertEqual(s.recv(1), b"b")
        for _ in range(20):
            self.assertEqual(echo(srv.port), b"ping")

    def test_sighup_during_drain(self):
        srv = Server(self, config=self.config("heartbeat_timeout = 0\n"),
                     sets={"shutdown_timeout": "5s"}).start()
        held = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(held.close)
        held.sendall(b"x")
        self.assertEqual(held.recv(1), b"x")
        srv.signal(signal.SIGTERM)
        wait_log(srv, "graceful drain")
        self.config("heartbeat_timeout = 1s\n")
        srv.signal(signal.SIGHUP)
        line = wait_log(srv, "no reload")
        print(f"SIGHUP during the drain: {line[0][3]}")
        self.assertTrue(srv.alive())


class ReloadGenerationTest(ReloadBase):
    def test_listen_in_use_keeps_serving(self):
        """A reload to a metrics address in use (the command line's --listen wins over the
        file's listen): the new generation cannot bind and exits; the running one serves
        on (its error line, and one from the new generation itself)."""
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        srv = Server(self, config=self.config("heartbeat_timeout = 0\n")).start()
        self.config(f"heartbeat_timeout = 0\nmetrics_listen = 127.0.0.1:{busy.getsockname()[1]}\n")
        srv.signal(signal.SIGHUP)
        line = wait_log(srv, "exited before it was ready", level="error")
        errors = [t for _, pid, _, t in srv.log_lines(level="error")]
        print(errors)
        self.assertEqual([t for _, pid, _, t in srv.log_lines(level="error") if pid == srv.pid],
                         [line[0][3]])
        self.assertEqual(echo(srv.port), b"ping")

    def test_workers_1_to_2_through_a_new_generation(self):
        from lifecycle import new_generations
        srv = Server(self, config=self.config("heartbeat_timeout = 0\n")).start()
        held = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(held.close)
        self.reload(srv, "heartbeat_timeout = 0\nworkers = 2\n", "changed workers")
        wait_log(srv, "handover:")
        new = new_generations(self, srv)[-1]
        wait_until(lambda: len(children(new)) == 2, 10, "the new generation's two workers")
        for _ in range(10):
            self.assertEqual(echo(srv.port), b"ping")
        held.sendall(b"z")
        self.assertEqual(held.recv(1), b"z")  # the old generation still serves its own
        held.close()
        self.assertEqual(srv.wait_exit(15), 0)
        print(f"workers=1 -> 2 by a reload: new generation {new} with workers "
              f"{children(new)} on the same socket")


class ReloadCensusTest(ReloadBase):
    def test_census_interval_applied_at_once(self):
        """census_interval is applied at once: the census tick (seen here through its STATUS=
        notification, NOTIFY_SOCKET) runs at the new period after the reload."""
        from test_server_sdnotify import Notify
        n = Notify(self)
        srv = Server(self, config=self.config("census_interval = 10s\n"),
                     env={"NOTIFY_SOCKET": n.path}).start()
        n.wait(lambda m: m == "READY=1", "READY=1")
        self.reload(srv, "census_interval = 100ms\n", "changed census_interval")
        start, t0 = len(n.poll()), time.monotonic()
        # Five ticks well before the old period (10 s) would have given even one.
        wait_until(lambda: sum(m.startswith("STATUS=") for m in n.poll()[start:]) >= 5, 5,
                   "five census ticks at the new period")
        print(f"5 census ticks {time.monotonic() - t0:.2f}s after census_interval 10s -> "
              f"100ms")
