/* conn: one connection's life, accept to close, with its reason.
 *
 * The order of events, as in conn.c:
 *   conn_accept      read event, heartbeat (socket options inherited from the listener)
 *   conn_on_read     echo: read into a shared buffer, write straight back; what the
 *                    kernel does not take is queued
 *   conn_on_eof      recv()==0: stop reading
 *   conn_on_write    flush the queued echo
 *   conn_on_closed   EPOLLRDHUP while paused: remember the FIN, start fin_timeout
 *   conn_on_*timeout heartbeat / write-timeout / fin-timeout: an alarm rings, the
 *                    deadline is checked against the clock, and re-armed if not yet due;
 *                    a passed heartbeat or write deadline asks the socket first (a
 *                    stalled loop rings every alarm late: read once, or write when the
 *                    send queue has room)
 *   conn_drain       SIGTERM: flush, our FIN at a quiet point, read to the peer's EOF;
 *                    with drain_spread at the connection's turn (conn_drain_at)
 *   conn_on_end      the ending's one timer: max_connection_age (then ended as a drain,
 *                    reason max-age), the drain's turn, half the grace (our FIN once the
 *                    echo is flushed, quiet or not), the grace's end (reset)
 *   conn_decide      after every event, what next: wait, pause or resume reading (at
 *                    output_high_watermark and at half of it), start fin_timeout, ignore
 *                    the EOF (close_on_eof=no), send our FIN, close (eof or shutdown)
 *   conn_close       exactly one reason, counted; SO_LINGER 0 first for dead peers
 *
 * Memory: an idle connection (reading, nothing queued, not ending) is its struct conn
 * alone, with one armed deadline, the heartbeat's alarm. The write side (struct conn_out,
 * made at the first queued echo) and the ending (struct conn_end, made at a drain, its
 * turn, max_connection_age or a FIN noted with fin_timeout) are allocated when first
 * needed, in conn.c.
 */
#ifndef TEARDOWN_SERVER_CONN_H
#define TEARDOWN_SERVER_CONN_H

#include "stats.h"

#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct server;
struct server_config;
struct conn_out; /* conn.c */
struct conn_end; /* conn.c */

enum conn_flag {
	CONN_PAUSED = 1 << 0,	   /* output above the high watermark: not reading */
	CONN_PEER_FIN = 1 << 1,	   /* the peer's FIN is known (recv()==0 or EPOLLRDHUP) */
	CONN_EOF_READ = 1 << 2,	   /* recv() returned 0: nothing more to read */
	CONN_DRAINING = 1 << 3,	   /* graceful drain in progress */
	CONN_SHUT_WR = 1 << 4,	   /* our FIN is sent (drain): read and discard to EOF */
	CONN_EOF_IGNORED = 1 << 5, /* leaky mode: recv()==0 ignored, socket left open */
	CONN_AGED = 1 << 6,	   /* the drain is max_connection_age's: reason max-age */
	CONN_FIN_DUE = 1 << 7,	   /* half the grace passed: our FIN once the echo is flushed,
				    * input unread or not (it is read and discarded after) */
};

/* What every connection holds, idle or not: 360 bytes with libevent 2.1's 128-byte struct
 * event (568 when the write side and the ending were embedded here; conn.c asserts the
 * size, tests/integration/test_server_idle_memory.py the heap an idle connection costs). */
struct conn {
	struct server *srv;
	int fd;
	unsigned flags;
	int64_t rx_us;		   /* monotonic time of the last read (or of the heartbeat's
				    * start): the heartbeat deadline is rx_us + timeout */
	int64_t born_us;	   /* monotonic time of the accept */
	int64_t fin_us;		   /* monotonic time the FIN became known, 0 = not yet (here,
				    * not in conn_end: an EOF closed at once stamps it too) */
	struct event ev_read;	   /* EV_READ|EV_PERSIST */
	struct event ev_heartbeat; /* alarm for the heartbeat deadline (conn_deadline_due) */
	struct conn_out *out;	   /* the write side: NULL until echo is first queued, then
				    * kept until the close (conn.c says why) */
	struct conn_end *end;	   /* the ending: NULL until the peer's FIN is noted (with
				    * fin_timeout), a drain or its turn, or max_connection_age */
	TAILQ_ENTRY(conn) link;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/* ---- the decision: what a connection does next (conn_decide) ---- */

/* Every handler in conn.c ends by asking conn_decide what follows from the connection's
 * state, applies the answer, and asks again until the answer is CONN_ACT_WAIT. */
enum conn_action {
	CONN_ACT_WAIT,		 /* at rest until the next event */
	CONN_ACT_ASK_UNREAD,	 /* our FIN is due unless input is unread: measure it, ask again */
	CONN_ACT_PAUSE,		 /* queued echo reached output_high_watermark: stop reading */
	CONN_ACT_RESUME,	 /* queued echo is down to half of it: read again */
	CONN_ACT_NOTE_FIN,	 /* EOF read, echo still queued: the FIN time starts fin_timeout */
	CONN_ACT_IGNORE_EOF,	 /* close_on_eof=no: the socket stays in CLOSE_WAIT (leaky) */
	CONN_ACT_SHUT_WR,	 /* draining, nothing queued or unread: send our FIN */
	CONN_ACT_CLOSE_EOF,	 /* the peer's EOF read, its echo flushed: close, reason eof */
	CONN_ACT_CLOSE_SHUTDOWN, /* drain complete: both FINs, or an ignored EOF's echo flushed */
	CONN_ACT_CLOSE_MAX_AGE,	 /* the same for a connection ended by max_connection_age */
};

/* What the decision is made from: everything it needs, nothing else, so that it can be
 * tested as a table (tests/unit/test_server_conn_decide.c). */
struct conn_facts {
	unsigned flags;	   /* enum conn_flag */
	size_t out;	   /* conn_out_len */
	size_t high;	   /* output_high_watermark */
	int unread;	   /* input in the receive queue (SIOCINQ): 1, 0, or -1 = not asked */
	bool close_on_eof; /* config */
	bool early_close;  /* config */
};

/* Pure: the next action for these facts. Asserts conn_facts_broken(f, false) == NULL on
 * entry, and conn_facts_broken(f, true) == NULL when it answers CONN_ACT_WAIT. */
enum conn_action conn_decide(const struct conn_facts *f);
/* NULL when the facts hold the invariants the decision and the event handling rely on,
 * else the broken one in words. at_rest: also those of a connection waiting for its next
 * event (between events, a state may be on its way: paused with the echo just flushed). */
const char *conn_facts_broken(const struct conn_facts *f, bool at_rest);
const char *conn_action_name(enum conn_action a);

/* Takes ownership of an accepted, nonblocking fd (options inherited from the listener),
 * registers its events. On failure the fd is closed, counted (reason error) and -1
 * returned. */
int conn_accept(struct server *srv, int fd, const struct sockaddr *peer, socklen_t len);
/* Bytes of echo queued for the peer (the kernel did not take them yet). */
size_t conn_out_len(const struct conn *c);
/* Graceful drain: flush, shutdown(SHUT_WR), read to the peer's EOF, close (a connection
 * whose EOF was ignored: flush, close); with drain_grace, our FIN by half of it, a reset
 * at its end. A connection already ending (max-age) goes on as it is. */
void conn_drain(struct conn *c);
/* The same at at_us (CLOCK_MONOTONIC, drain_spread's turn); until then the connection
 * lives as before. 0, or -1 when its timer could not be armed and the connection was
 * closed (reason error). A connection already ending is left alone (0). */
int conn_drain_at(struct conn *c, int64_t at_us);
/* 1 while the connection waits for its drain turn (conn_drain_at). */
int conn_drain_waiting(const struct conn *c);
/* Close now with SO_LINGER 0 (shutdown_timeout reached). */
void conn_abort(struct conn *c, enum close_reason reason);

#endif
