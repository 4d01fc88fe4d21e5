# Goal of this test: the mode sets the defaults, a key in the config file overrides the mode, and the command line overrides the file (observed on the server's accepted sockets).
import os
import socket
import tempfile

from harness import TCP_USER_TIMEOUT, ServerTest, server_socket_for


class PrecedenceTest(ServerTest):
    def _conf(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(text)
        self.addCleanup(os.unlink, f.name)
        return f.name

    def _opts(self, srv):
        c = self.connect(srv.port)
        self.echo_once(c)
        s = server_socket_for(srv.pid, c)
        try:
            return (s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT))
        finally:
            s.close()

    def test_file_over_mode_and_command_line_over_file(self):
        conf = self._conf("mode = leaky\nkeepalive = yes\nkeepalive_idle = 11s\n")
        srv = self.start_server(config=conf, sets={"keepalive_idle": "13s"})
        ka, idle, ut = self._opts(srv)
        print(f"leaky file + keepalive=yes + --set keepalive_idle=13s: keepalive={ka} "
              f"idle={idle} user_timeout={ut}")
        self.assertEqual(ka, 1, "keepalive=yes in the file did not override leaky's default")
        self.assertEqual(idle, 13, "--set did not override the file")
        self.assertEqual(ut, 0, "leaky mode's user_timeout default (0) not applied")

    def test_command_line_mode_over_file_mode(self):
        conf = self._conf("mode = leaky\n")
        srv = self.start_server(config=conf, mode="correct")
        ka, idle, ut = self._opts(srv)
        print(f"file mode=leaky, --mode correct: keepalive={ka} user_timeout={ut}")
        self.assertEqual(ka, 1, "--mode correct did not override the file's mode")
        self.assertGreater(ut, 0)

    def test_file_mode_alone(self):
        conf = self._conf("mode = leaky\n")
        srv = self.start_server(config=conf)
        ka, idle, ut = self._opts(srv)
        self.assertEqual((ka, ut), (0, 0), "mode = leaky in the file did not set leaky defaults")
