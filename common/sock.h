/* sock: every socket option the project sets, one small function each.
 *
 * Each returns 0, or -1 with errno set by the failing call; none of them logs (the caller
 * reports the failure once, with the peer's address). Each is read back with getsockopt()
 * in tests/unit/test_sock.c. */
#ifndef TEARDOWN_SOCK_H
#define TEARDOWN_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

int sock_set_nonblocking(int fd);
int sock_set_reuseaddr(int fd);
/* Only for several processes sharing one port on purpose (server `workers`): without it a
 * second server on a port in use must fail with EADDRINUSE. */
int sock_set_reuseport(int fd);
/* SO_KEEPALIVE plus the per-socket TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT, which
 * replace the system-wide 7200 s / 75 s / 9 (net.ipv4.tcp_keepalive_*). Seconds. */
int sock_set_keepalive(int fd, int idle_s, int interval_s, int count);
int sock_clear_keepalive(int fd);
/* TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged (and, with
 * keepalive on, how long probes may go unanswered) before the kernel aborts with
 * ETIMEDOUT. It then overrides keepalive_count (tcp(7)). 0 = the kernel default. */
int sock_set_user_timeout(int fd, unsigned ms);
/* SO_LINGER {1, 0}: the next close() sends RST and discards the send queue, so no
 * orphaned FIN_WAIT_1 / LAST_ACK socket keeps retransmitting to a dead peer. */
int sock_set_linger_reset(int fd);
int sock_set_nodelay(int fd);
/* TCP_QUICKACK on: an ACK the kernel is delaying goes out now (and the next ones are not
 * delayed until it falls back to delayed ACKs by itself). */
int sock_set_quickack(int fd);
/* TCP_REPAIR (needs CAP_NET_ADMIN: EPERM without it). A close() in repair mode removes the
 * socket without sending anything, neither FIN nor RST: a crashed peer, seen from the
 * other end. */
int sock_set_repair(int fd, int on);
/* IP_BIND_ADDRESS_NO_PORT: bind() a source address but let connect() pick the port, so
 * each (source, destination) pair gets its own ephemeral port range. */
int sock_set_bind_no_port(int fd);

/* Sets the port of an IPv4 or IPv6 address. */
void sock_set_port(struct sockaddr_storage *ss, uint16_t port);
/* Whether this host can bind a stream socket to ss's address (its port taken as 0): 0, or
 * the errno (EADDRNOTAVAIL: not an address of this host or network namespace). */
int sock_bind_check(const struct sockaddr_storage *ss, socklen_t len);
/* The local address this host sends from towards dst (a UDP socket's connect() routes
 * without sending anything; getsockname() tells), port 0. 0, or -1 with errno. */
int sock_route_source(const struct sockaddr *dst, socklen_t dstlen, struct sockaddr_storage *src,
		      socklen_t *srclen);
/* "HOST:PORT", "[V6]:PORT" or ":PORT" (numeric hosts or names). 0, or -1 with a reason
 * in err. */
int sock_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
			size_t errlen);
/* Bound, not yet listening, nonblocking stream socket (SO_REUSEADDR; SO_REUSEPORT when
 * asked), or -1 with errno (EADDRINUSE...). Options that accepted sockets should inherit
 * are set on it before listen(): no connection can be queued without them. */
int sock_bind_stream(const struct sockaddr *sa, socklen_t len, int reuseport);
/* sock_bind_stream() then listen(): a listening socket, or -1 with errno. */
int sock_listen(const struct sockaddr *sa, socklen_t len, int backlog, int reuseport);
/* 1 when a failed nonblocking recv/send/accept may simply be retried later (EAGAIN,
 * EWOULDBLOCK, EINTR), 0 when err is a real error. */
int sock_errno_transient(int err);
/* After a failed accept4(): 1 when only that one connection (or a signal) was lost, so the
 * next accept may succeed at once (EINTR, ECONNABORTED, EPROTO). */
int sock_accept_retry(int err);
/* After a failed accept4(): 1 when the process or the system is out of fds or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM): the listener stays readable, so accepting again at
 * once would spin. */
int sock_accept_exhausted(int err);
/* The port a socket is bound to, or -1. */
int sock_local_port(int fd);
/* "1.2.3.4:80" or "[::1]:80" into buf. Returns buf. */
const char *sock_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* The bytes in a TCP socket's send queue not yet acknowledged by the peer (SIOCOUTQ:
 * unsent ones included) and the send buffer's size (SO_SNDBUF, which the kernel doubles
 * for its bookkeeping and grows by autotuning). 0, or -1 with errno. */
int sock_send_queue(int fd, int *queued, int *bufsize);
/* The exit status for a failed bind or listen (err: its errno): 2 when the config must
 * change (the address is in use, not local, or privileged), 1 otherwise. */
int sock_listen_exit_code(int err);

/* 1 when SO_REUSEPORT is set on fd (a socket adopted at start: one of a group, or one
 * socket its workers must share), else 0. */
int sock_is_reuseport(int fd);

#endif
