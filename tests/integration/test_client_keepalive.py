# Goal of this test: --keepalive IDLE,INTERVAL,COUNT puts a keepalive timer of about IDLE on every client socket, as the census's per-state timer summary (and ss -o) shows while the connections are held.
import os
import signal
import subprocess
import json

from harness import REPO, ServerTest, server_env, wait_until
from test_client_helpers import client_bin, server_addr

N = 20


class ClientKeepaliveTest(ServerTest):
    def test_keepalive_timers(self):
        srv = self.start_server()
        proc = subprocess.Popen([str(client_bin()), "--server", server_addr(srv),
                                 "--connections", str(N), "--scenario", "silent",
                                 "--hold", "20s", "--keepalive", "7s,2s,3", "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=server_env(), cwd=str(REPO), start_new_session=True)

        def stop():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        self.addCleanup(stop)

        def timers():
            out = subprocess.run([str(client_bin()), "states", "--port", str(srv.port),
                                  "--json"], capture_output=True, text=True, check=True).stdout
            remote = json.loads(out)["remote"]
            ka = remote["timers"].get("established", {}).get("keepalive")
            if remote["states"]["established"] == N and ka and ka["count"] == N:
                return ka
            return None
        ka = wait_until(timers, 15, f"{N} ESTABLISHED client sockets with a keepalive timer")
        print(f"client keepalive timers: {ka['count']} sockets, latest due in "
              f"{ka['max_expiry_ms']} ms (idle 7 s)")
        self.assertLessEqual(ka["max_expiry_ms"], 7000)
        self.assertGreater(ka["max_expiry_ms"], 3000)
        # the first SIGTERM ends the run early and gracefully: the report still comes
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
