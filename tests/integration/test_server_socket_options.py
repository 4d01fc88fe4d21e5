# Goal of this test: keepalive idle/interval/count and TCP_USER_TIMEOUT from the config are applied to every accepted socket (read back from the server's own fd with pidfd_getfd).
import socket

from harness import TCP_USER_TIMEOUT, ServerTest, server_socket_for


def options(s):
    return {
        "keepalive": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "interval": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "count": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "user_timeout_ms": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }


class SocketOptionsTest(ServerTest):
    def _server_options(self, srv, n=3):
        got = []
        for _ in range(n):
            c = self.connect(srv.port)
            self.echo_once(c)
            s = server_socket_for(srv.pid, c)
            try:
                got.append(options(s))
            finally:
                s.close()
        return got

    def test_configured_values(self):
        srv = self.start_server(sets={"keepalive": "yes", "keepalive_idle": "7s",
                                      "keepalive_interval": "3s", "keepalive_count": "4",
                                      "user_timeout": "45s"})
        for o in self._server_options(srv):
            print(f"server socket options: {o}")
            self.assertEqual(o, {"keepalive": 1, "idle": 7, "interval": 3, "count": 4,
                                 "user_timeout_ms": 45000})

    def test_correct_mode_defaults(self):
        srv = self.start_server()
        o = self._server_options(srv, 1)[0]
        detect = o["idle"] + o["interval"] * o["count"]
        print(f"default server socket options: {o}; keepalive detection {detect}s")
        self.assertEqual(o["keepalive"], 1, "keepalive off by default in correct mode")
        self.assertTrue(60 <= detect <= 300, f"keepalive detection time {detect}s is not "
                        "about two minutes")
        self.assertGreater(o["user_timeout_ms"], detect * 1000,
                           "user_timeout not above the keepalive detection time")

    def test_keepalive_off(self):
        srv = self.start_server(sets={"keepalive": "no", "user_timeout": "0"})
        o = self._server_options(srv, 1)[0]
        print(f"keepalive=no: {o}")
        self.assertEqual(o["keepalive"], 0)
        self.assertEqual(o["user_timeout_ms"], 0)

    def test_leaky_mode_has_none(self):
        srv = self.start_server(mode="leaky")
        o = self._server_options(srv, 1)[0]
        print(f"leaky mode: {o}")
        self.assertEqual(o["keepalive"], 0, "leaky mode sets keepalive")
        self.assertEqual(o["user_timeout_ms"], 0, "leaky mode sets TCP_USER_TIMEOUT")
