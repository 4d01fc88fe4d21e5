/* conn: one connection's life, accept to close, with its reason.
 *
 * The order of events, as in conn.c:
 *   conn_accept      read event, heartbeat (socket options inherited from the listener)
 *   conn_on_read     echo: read into a shared buffer, write straight back; what the
 *                    kernel does not take is queued; above output_high_watermark reading
 *                    pauses and (early_close) EPOLLRDHUP is watched instead
 *   conn_on_eof      recv()==0: stop reading, flush the queued echo, then close
 *   conn_on_closed   EPOLLRDHUP while paused: remember the FIN, start fin_timeout
 *   conn_on_*timeout heartbeat / write-timeout / fin-timeout: an alarm rings, the
 *                    deadline is checked against the clock, and re-armed if not yet due;
 *                    a passed heartbeat or write deadline asks the socket first (a
 *                    stalled loop rings every alarm late: read once, or write when the
 *                    send queue has room)
 *   conn_close       exactly one reason, counted; SO_LINGER 0 first for dead peers
 */
#ifndef TEARDOWN_SERVER_CONN_H
#define TEARDOWN_SERVER_CONN_H

#include "stats.h"

#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct server;
struct server_config;
struct evbuffer;

enum conn_flag {
	CONN_PAUSED = 1 << 0,      /* output above the high watermark: not reading */
	CONN_PEER_FIN = 1 << 1,    /* the peer's FIN is known (recv()==0 or EPOLLRDHUP) */
	CONN_EOF_READ = 1 << 2,    /* recv() returned 0: nothing more to read */
	CONN_DRAINING = 1 << 3,    /* graceful drain in progress */
	CONN_SHUT_WR = 1 << 4,     /* our FIN is sent (drain): read and discard to EOF */
	CONN_EOF_IGNORED = 1 << 5, /* leaky mode: recv()==0 ignored, socket left open */
};

struct conn {
	struct server *srv;
	int fd;
	unsigned flags;
	int64_t fin_us;            /* monotonic time the FIN became known, 0 = not yet */
	int64_t rx_us;             /* monotonic time of the last read (or of the heartbeat's
				    * start): the heartbeat deadline is rx_us + timeout */
	int64_t wto_us;            /* monotonic time of the last write progress while output
				    * was queued: the write deadline is wto_us + timeout */
	uint64_t wto_acked;        /* the peer's acknowledged bytes (TCP_INFO) at the last
				    * progress; UINT64_MAX: unknown */
	struct evbuffer *out;      /* echo the kernel did not take yet (lazily allocated) */
	struct event ev_read;      /* EV_READ|EV_PERSIST */
	struct event ev_write;     /* EV_WRITE|EV_PERSIST, armed while out is not empty */
	struct event ev_heartbeat; /* alarm for the heartbeat deadline (conn_deadline_due) */
	struct event *ev_closed;   /* EV_CLOSED, one-shot, only while paused (lazily) */
	struct event *ev_wtimeout; /* alarm for the write deadline (lazily) */
	struct event *ev_fin;      /* fin_timeout after the peer's FIN (lazily) */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	TAILQ_ENTRY(conn) link;
};

/* Sets the accepted sockets' options (nodelay, keepalive, user timeout) on the bound,
 * not yet listening socket lfd, which they inherit. 0, or -1 with errno. */
int conn_listener_options(const struct server_config *cfg, int lfd);
/* Takes ownership of an accepted, nonblocking fd (options inherited from the listener),
 * registers its events. On failure the fd is closed, counted (reason error) and -1
 * returned. */
int conn_accept(struct server *srv, int fd, const struct sockaddr *peer, socklen_t len);
/* Bytes of echo queued for the peer (the kernel did not take them yet). */
size_t conn_out_len(const struct conn *c);
/* Graceful drain: flush, shutdown(SHUT_WR), read to the peer's EOF, close (a connection
 * whose EOF was ignored: flush, close). */
void conn_drain(struct conn *c);
/* Close now with SO_LINGER 0 (shutdown_timeout reached). */
void conn_abort(struct conn *c, enum close_reason reason);

#endif
