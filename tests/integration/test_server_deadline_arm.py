# Goal of this test: a connection whose write, fin_timeout or heartbeat deadline cannot be created or armed is closed with reason error instead of living on without it.
"""The fault-injection shim (tests/shim/stall.c) makes libevent's timer creation
(event_new for a timer) or the arming of timers of one duration (event_add) fail while a
trigger file exists; the trigger is created once the server is listening, so its own
timers exist. Without the checks the connection would stay open for ever: a peer that
never reads, a half-closed peer that never reads, a silent peer."""
import errno
import os
import socket
import tempfile

from harness import ServerTest, fill_until_paused, send_until_blocked, shim_env


class DeadlineArmTest(ServerTest):
    def start_with_trigger(self, rule, sets):
        d = tempfile.mkdtemp(prefix="teardown-arm-")
        trigger = os.path.join(d, "fail")
        self.addCleanup(lambda: (os.path.exists(trigger) and os.unlink(trigger), os.rmdir(d)))
        srv = self.start_server(sets=sets, env=shim_env(f"{rule},trigger={trigger}"))
        open(trigger, "w").close()
        return srv, trigger

    def non_reader(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        return s

    def expect_error_close(self, srv, trigger, what):
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, f"{what}: the connection closed")
        os.unlink(trigger)
        print(f"{what}: closed {c['closed']}")
        self.assertEqual(c["closed"]["error"], 1, c["closed"])
        self.assertTrue(srv.log_lines(level="warn", contains="failed"), srv.log_tail())

    def test_write_deadline_not_created(self):
        srv, trigger = self.start_with_trigger(
            f"call=timer_new,errno={errno.ENOMEM}",
            {"write_timeout": "1s", "heartbeat_timeout": "0", "fin_timeout": "0"})
        s = self.non_reader(srv.port)
        try:
            send_until_blocked(s, 4 << 20, stall=0.3)
        except ConnectionResetError:
            pass  # closed as soon as echo was queued: what the test expects
        self.expect_error_close(srv, trigger, "write deadline")

    def test_fin_deadline_not_created(self):
        srv, trigger = self.start_with_trigger(
            f"call=timer_new,errno={errno.ENOMEM}",
            {"write_timeout": "0", "heartbeat_timeout": "0", "fin_timeout": "1s"})
        s = self.non_reader(srv.port)
        # Paused, with nothing left in the client's send queue: the FIN arrives at once
        # (EPOLLRDHUP), and the queued echo keeps it from closing the connection.
        fill_until_paused(srv, s, 64 << 10)
        s.shutdown(socket.SHUT_WR)
        self.expect_error_close(srv, trigger, "fin_timeout deadline")

    def test_heartbeat_not_armed(self):
        srv, trigger = self.start_with_trigger(
            f"call=timer_add,ms=3000,errno={errno.ENOMEM}",
            {"heartbeat_timeout": "3s"})
        self.connect(srv.port)  # silent: only its heartbeat deadline would close it
        self.expect_error_close(srv, trigger, "heartbeat deadline")
