# Goal of this test: SIGPIPE is ignored, so neither a kill -PIPE nor writing echo to peers that reset kills the server.
import signal
import socket

from harness import ServerTest, pattern, reset_close


def sigign_mask(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return int(line.split()[1], 16)
    return 0


class SigpipeTest(ServerTest):
    def test_sigpipe_ignored(self):
        srv = self.start_server()
        mask = sigign_mask(srv.pid)
        print(f"SigIgn mask {mask:#x}")
        self.assertTrue(mask & (1 << (signal.SIGPIPE - 1)), "SIGPIPE is not ignored")
        srv.signal(signal.SIGPIPE)
        s = self.connect(srv.port)
        self.echo_once(s)  # still alive and serving
        self.assertTrue(srv.alive())

    def test_writes_to_reset_peers(self):
        srv = self.start_server(sets={"output_high_watermark": "1m"})
        for i in range(30):
            s = self.connect(srv.port)
            s.sendall(pattern(512 << 10, i))  # the server is writing echo when the RST lands
            if i % 2:
                reset_close(s)
            else:
                s.shutdown(socket.SHUT_RD)
                s.close()  # unread data: RST as well
        c = srv.wait_counters(lambda c: c["open"] == 0, 15, "all 30 connections closed")
        print(f"30 peers gone mid-echo: closed {c['closed']}")
        self.assertTrue(srv.alive(), f"server died: exit {srv.proc.returncode}")
        self.assertEqual(c["closed"]["reset"] + c["closed"]["eof"], 30, f"{c}")
        s = self.connect(srv.port)
        self.echo_once(s)
