# Goal of this test: with heartbeat_timeout=1s a silent client is closed after 1.0-1.3 s (reason heartbeat) and one sending a byte every 300 ms stays open.
import socket
import threading
import time

from harness import ServerTest, recv_exactly


def time_to_close(sock, t0, timeout=10):
    """Seconds from t0 until the server's FIN or RST reaches sock."""
    sock.settimeout(timeout)
    try:
        b = sock.recv(1)
        if b:
            return None, f"unexpected data {b!r}"
        how = "FIN"
    except ConnectionResetError:
        how = "RST"
    except socket.timeout:
        return None, "no close"
    return time.monotonic() - t0, how


class HeartbeatTest(ServerTest):
    def test_silent_closed_and_talking_kept(self):
        srv = self.start_server(sets={"heartbeat_timeout": "1s", "log_level": "debug"})
        # The chatty client runs in a thread alongside the silent ones.
        chatty = self.connect(srv.port)
        result = {}

        def talk():
            try:
                end = time.monotonic() + 3.0
                n = 0
                while time.monotonic() < end:
                    chatty.sendall(b"h")
                    if recv_exactly(chatty, 1, 5) != b"h":
                        result["error"] = f"no echo for heartbeat byte {n}"
                        return
                    n += 1
                    time.sleep(0.3)  # the behaviour under test: a byte every 300 ms
                result["sent"] = n
            except OSError as e:
                result["error"] = f"{type(e).__name__}: {e}"
        th = threading.Thread(target=talk, daemon=True)
        th.start()

        times = []
        for i in range(3):
            t0 = time.monotonic()
            s = self.connect(srv.port)
            took, how = time_to_close(s, t0)
            self.assertIsNotNone(took, f"silent client {i}: {how}")
            times.append(took)
            print(f"silent client {i}: closed ({how}) {took:.3f}s after connect")
        th.join(10)
        self.assertFalse(th.is_alive())
        self.assertNotIn("error", result, result.get("error"))
        print(f"chatty client: {result['sent']} heartbeats over 3 s, still open")
        chatty.sendall(b"z")
        self.assertEqual(recv_exactly(chatty, 1, 5), b"z", "chatty client closed")
        c = srv.counters()
        print(f"counters: {c['closed']}")
        self.assertEqual(c["closed"]["heartbeat"], 3, f"{c}")
        self.assertEqual(c["open"], 1, f"{c}")
        for t in times:
            # t0 is taken before connect(), the server's deadline starts at accept: a close
            # before 1.0 s would be a deadline that fired early.
            self.assertGreaterEqual(t, 1.0, f"closed too early: {t:.3f}s")
            self.assertLessEqual(t, 1.3, f"closed too late: {t:.3f}s")
