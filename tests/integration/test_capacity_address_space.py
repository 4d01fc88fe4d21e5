# Goal of this test: with its address space capped at its current size + 64 MiB (prlimit --as on the running server) and peers that make it buffer echo until memory runs out, the connections that cannot get memory are closed with reason error, the others keep echoing, and the server stays up and serves new clients once memory is free again (plain build only: ASan reserves terabytes of address space).
import select
import socket
import subprocess
import time

from harness import (REASONS, Server, ServerTest, assert_counters_consistent, server_bin,
                     tcp_state)

MIB = 1 << 20
HEADROOM = 64 * MIB
HWM = 16 * MIB      # output_high_watermark: each hog may make the server hold this much
HOGS = 12           # 12 x 16 MiB is well above the 64 MiB headroom
KEEPERS = 10
# More than the server buffers plus the kernel's: on loopback (MSS about 64 KiB) a socket's
# send buffer starts near tcp_wmem's maximum (4 MiB here), and the echo waits there first.
PER_HOG = 24 * MIB


def vm_size(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def closed_by_server(s):
    """The server closed s's peer socket: s got its FIN (CLOSE_WAIT) or its RST (gone from
    the table). Not from recv(): echo the hog never read is still queued before either."""
    try:
        state = tcp_state(s.getsockname(), s.getpeername())
    except OSError:
        return True  # not connected any more: reset
    return state in (None, "CLOSE_WAIT", "CLOSE")


class AddressSpaceTest(ServerTest):
    def feed(self, hogs, seconds):
        """Sends to every hog without reading until each is blocked (the server stopped
        reading it) or closed by the server; returns how many the server closed."""
        chunk, sent = b"m" * (64 << 10), {s: 0 for s in hogs}
        live, closed, end = set(hogs), 0, time.monotonic() + seconds
        while live and time.monotonic() < end:
            _, w, _ = select.select([], list(live), [], 1.0)
            if not w:
                break  # every live hog is blocked: the server holds what it may
            for s in w:
                try:
                    sent[s] += s.send(chunk)
                except BlockingIOError:
                    continue
                except OSError:
                    live.discard(s)
                    closed += 1
                    continue
                if sent[s] >= PER_HOG:
                    live.discard(s)
        return sum(sent.values())

    def test_out_of_address_space(self):
        if "/asan/" in str(server_bin()):
            self.skipTest("ASan reserves terabytes of address space: RLIMIT_AS cannot apply")
        srv = Server(self, sets={"output_high_watermark": f"{HWM // MIB}m", "write_timeout": "5m",
                                 "heartbeat_timeout": "5m", "fin_timeout": "5m"}).start()
        keepers = [self.connect(srv.port) for _ in range(KEEPERS)]
        for k in keepers:
            self.echo_once(k)
        size = vm_size(srv.pid)
        limit = size + HEADROOM
        subprocess.run(["prlimit", "--pid", str(srv.pid), f"--as={limit}:{limit}"], check=True)
        hogs = []
        for _ in range(HOGS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keeps the echo in the server
            s.connect(("127.0.0.1", srv.port))
            s.setblocking(False)
            self.addCleanup(s.close)
            hogs.append(s)
        total = self.feed(hogs, 120)
        c = srv.counters()
        gone = sum(closed_by_server(s) for s in hogs)
        for k in keepers:
            self.echo_once(k, b"keeper still echoing\n")
        print(f"VmSize {size / MIB:.0f} MiB, RLIMIT_AS {limit / MIB:.0f} MiB; {HOGS} hogs sent "
              f"{total / MIB:.0f} MiB; server closed {gone} hogs; closed by reason "
              f"{ {r: n for r, n in c['closed'].items() if n} }; open {c['open']}; VmSize now "
              f"{vm_size(srv.pid) / MIB:.0f} MiB")
        self.assertTrue(srv.alive(), srv.log_tail())
        self.assertGreater(c["closed"]["error"], 0, "no connection ran out of memory")
        self.assertEqual(c["closed"]["error"], gone)
        self.assertEqual(sum(c["closed"][r] for r in REASONS if r != "error"), 0)
        assert_counters_consistent(self, c)
        # Memory back: the hogs go, and new clients are served.
        for s in hogs:
            s.close()
        srv.wait_counters(lambda x: x["open"] == KEEPERS, 30, "the hogs' connections to close")
        fresh = self.connect(srv.port)
        self.echo_once(fresh, b"x" * 100000)
        for k in keepers:
            self.echo_once(k)
        self.assertTrue(srv.alive())
