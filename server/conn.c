/* conn: one connection's life, accept to close. Read this file top to bottom: it follows
 * the order in which things happen to a connection (see conn.h).
 *
 * libevent details this file relies on (libevent 2.1, epoll backend):
 * - Raw events and an evbuffer, not a bufferevent: a bufferevent never watches EV_CLOSED,
 *   defers its writes to the next loop iteration and re-arms its timeouts on every
 *   message. Here a message is read into one shared buffer and written straight back; only
 *   what the kernel does not take is queued.
 * - EV_CLOSED (EPOLLRDHUP) needs EV_FEATURE_EARLY_CLOSE from event_config (server.c).
 * - The epoll backend reports EPOLLERR/EPOLLHUP (an RST) as EV_READ|EV_WRITE only, never
 *   as EV_CLOSED: an event armed with EV_CLOSED alone would never see an RST, and the
 *   level-triggered EPOLLERR would then wake the loop forever (libevent issue #1038). So
 *   EV_CLOSED is armed only while reading is paused, and paused means output is queued,
 *   which means ev_write is armed on the same fd: the RST reaches ev_write, whose send()
 *   fails with ECONNRESET or EPIPE.
 * - EPOLLRDHUP stays set once the FIN has arrived (level-triggered), so a persistent
 *   EV_CLOSED event would fire on every iteration: it is one-shot.
 * - Deleting an event that is active (both ev_read and ev_write fire on EPOLLHUP) removes
 *   it from the active queue too, so freeing the connection from either callback is safe.
 * - Timers are alarms, not deadlines. Re-adding a timer on every message (what a
 *   bufferevent does for its read timeout) costs an event_add per message; here a read
 *   only stamps the clock (CLOCK_MONOTONIC, a vDSO read), and the alarm, when it rings,
 *   compares the stamp with the clock and either closes or re-arms for what is left: one
 *   ring per timeout period (four for the write deadline, conn_on_write_timeout) instead
 *   of one event_add per message. The base runs on
 *   libevent's default coarse clock (server.c), which rings alarms early by as much as it
 *   lags CLOCK_MONOTONIC (up to 7.3 ms measured here, more than its 4 ms tick); the check
 *   against CLOCK_MONOTONIC makes every deadline never early; a re-armed alarm rings on the
 *   coarse clock again, so a close can come a few ms late.
 *
 * One decision: whether to wait, pause or resume reading, start fin_timeout, ignore an
 * EOF, send our FIN or close after an EOF or a drain follows from the connection's flags,
 * its queued echo and (draining) its unread input, and nothing else. conn_decide makes it,
 * a pure function tested as a table over every state the events can reach
 * (tests/unit/test_server_conn_decide.c). Each handler only records its event (bytes
 * read and queued, the EOF, the FIN from EPOLLRDHUP, bytes written, the drain) and ends in
 * conn_settle, which applies the answers until the answer is to wait; the deadline
 * callbacks change those facts only through the read and the flush they run, which
 * settle. The closes for eof and for a drain's orderly end (reason shutdown) happen there
 * and nowhere else; the others (an error, a deadline, the reset at shutdown_timeout)
 * close where they are found.
 *
 * Free-safety: a handler may close the connection (conn_close frees it) deep inside what
 * it calls. Every function here that returns int follows one rule: -1 means the
 * connection was closed and freed, and the caller returns at once without touching c
 * again; 0 or more means it is still open. Where a caller goes on using c, conn_kept
 * asserts the rule by reading c (an open connection has its fd): a helper that closed
 * and still returned 0 makes that read a use after free, which ASan reports at that line
 * (the tests run the server under ASan too). The plain build cannot tell, since the
 * allocator reuses the freed memory at once.
 *
 * A stalled loop (SIGSTOP/SIGCONT, a VM pause, CPU starvation, a slow callback) makes
 * every alarm ring late, and after SIGCONT epoll_wait fails with EINTR (signal(7): it is
 * never restarted after a stop), so libevent runs every expired alarm in that pass before
 * any byte that arrived meanwhile is read. By the clock alone every connection was then
 * silent, or made no progress, for the whole stall. So a deadline that finds itself past
 * asks the socket before it closes: the heartbeat reads once (input waiting means the
 * peer is alive; an EOF or an error gets its own reason), the write deadline looks at the
 * kernel's send queue (room in it means the loop, not the peer, was late). The evidence
 * is then taken after the stall, never from the clock across it.
 */
#include "conn.h"
#include "clock.h"
#include "log.h"
#include "server.h"
#include "sock.h"
#include "tcpinfo.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_closed(evutil_socket_t fd, short what, void *arg);
static void conn_on_heartbeat(evutil_socket_t fd, short what, void *arg);
static void conn_on_write_timeout(evutil_socket_t fd, short what, void *arg);
static void conn_on_fin_timeout(evutil_socket_t fd, short what, void *arg);
static void conn_on_end(evutil_socket_t fd, short what, void *arg);
static int conn_age_start(struct conn *c);
static int conn_end_start(struct conn *c, unsigned aged, int64_t grace_ms);
static int conn_settle(struct conn *c);
static void conn_close(struct conn *c, enum close_reason reason, int err);

/* The write side: what only a connection with echo queued uses. Allocated with its
 * evbuffer when output is first queued (conn_out_get) and kept until the close, not freed
 * when the queue empties: echo at a pipeline depth queues output often, and freeing it
 * would cost a malloc and a free of the part and of the evbuffer, and an event_assign,
 * per queueing episode, on the hot path. Kept, a connection that queued once holds this
 * part (168 bytes), the empty evbuffer and the write deadline's alarm until it closes: no
 * more than before, when the evbuffer and the alarm were kept the same way and ev_write
 * was in every struct conn. */
struct conn_out {
	struct evbuffer *buf;	   /* echo the kernel did not take yet */
	struct event ev_write;	   /* EV_WRITE|EV_PERSIST, armed while buf is not empty */
	struct event *ev_wtimeout; /* alarm for the write deadline (lazily) */
	struct event *ev_closed;   /* EV_CLOSED, one-shot, only while paused (lazily): paused
				    * means echo is queued, so the part exists */
	int64_t wto_us;		   /* monotonic time of the last write progress while output
				    * was queued: the write deadline is wto_us + timeout */
	uint64_t wto_acked;	   /* the peer's acknowledged bytes (TCP_INFO) at the last
				    * progress; UINT64_MAX: unknown */
};

/* The ending: what only a connection that is ending uses. Allocated (conn_end_get) when
 * the peer's FIN is noted with fin_timeout on, when a drain or its turn (drain_spread) is
 * scheduled, or at the accept with max_connection_age on; freed at the close. Its timers
 * are one heap timer each, never one of libevent's common timeouts (each connection's
 * deadline is its own, and a base has at most 256 of those); ev_end is armed at most four
 * times in a connection's life, never per message. */
struct conn_end {
	struct event *ev_fin; /* fin_timeout after the peer's FIN (lazily) */
	struct event *ev_end; /* conn_on_end (lazily) */
	int step;	      /* enum conn_end_step: what ev_end rings for */
	int64_t due_us;	      /* when (monotonic) */
	int64_t start_us;     /* when the drain or the max-age ending began */
	int64_t grace_ms;     /* that ending's grace; 0 = none of its own */
	int64_t shut_us;      /* monotonic time our FIN was sent (a drain's), 0 = not yet */
};

/* Two embedded events (ev_read, ev_heartbeat) and about 100 bytes of fields: what an idle
 * connection holds in one malloc chunk. Another field belongs in a part above unless an
 * idle connection uses it (tests/integration/test_server_idle_memory.py measures). */
_Static_assert(sizeof(struct conn) <= 2 * sizeof(struct event) + 104,
	       "struct conn grew: does an idle connection use the new field?");

/* The free-safety rule (top of the file): rc >= 0 promises that c is still open. Returns
 * rc. */
static int conn_kept(const struct conn *c, int rc)
{
	assert(rc < 0 || c->fd >= 0);
	return rc;
}

static const char *conn_peer(const struct conn *c, char *buf, size_t len)
{
	return sock_addr_str(&c->peer.sa, buf, len);
}

size_t conn_out_len(const struct conn *c)
{
	return c->out != NULL ? evbuffer_get_length(c->out->buf) : 0;
}

/* ---- accept ------------------------------------------------------------------------ */

static int conn_arm_failed(struct conn *c, const char *what);

/* The heartbeat deadline starts now (accept, or reading resumed after a pause). 0, or -1
 * when its alarm could not be armed and the connection was closed (reason error): a
 * connection without its deadline would never be closed for silence. */
static int conn_heartbeat_start(struct conn *c)
{
	c->rx_us = clock_mono_us();
	errno = 0; /* event_add may fail without setting it */
	if (c->srv->hb_tv != NULL && event_add(&c->ev_heartbeat, c->srv->hb_tv) < 0)
		return conn_arm_failed(c, "the heartbeat deadline");
	return 0;
}

int conn_accept(struct server *srv, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct conn *c = calloc(1, sizeof(*c));
	char name[64];

	if (c == NULL) {
		log_error("accept %s: out of memory", sock_addr_str(peer, name, sizeof(name)));
		goto fail;
	}
	c->srv = srv;
	c->fd = fd;
	c->born_us = clock_mono_us();
	memcpy(&c->peer, peer, len < sizeof(c->peer) ? len : sizeof(c->peer));
	event_assign(&c->ev_read, srv->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	evtimer_assign(&c->ev_heartbeat, srv->base, conn_on_heartbeat, c);
	/* In the table first: from here on a failure is a close like any other. */
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->stats.open++;
	if (event_add(&c->ev_read, NULL) < 0)
		return conn_arm_failed(c, "EV_READ");
	if (conn_age_start(c) < 0)
		return -1;
	return conn_heartbeat_start(c);
fail:
	free(c);
	close(fd);
	srv->stats.closed[CLOSE_ERROR]++;
	return -1;
}

/* ---- read and echo ----------------------------------------------------------------- */

/* Lazily created one-shot or timer events; NULL when libevent cannot allocate. */
static struct event *conn_timer(struct conn *c, struct event **ev, event_callback_fn cb)
{
	if (*ev == NULL)
		*ev = evtimer_new(c->srv->base, cb, c);
	return *ev;
}

/* The ending's part, allocated at its first use (see struct conn_end); NULL when out of
 * memory (errno ENOMEM, for conn_arm_failed). */
static struct conn_end *conn_end_get(struct conn *c)
{
	if (c->end == NULL)
		c->end = calloc(1, sizeof(*c->end));
	return c->end;
}

/* An event the connection cannot live without could not be armed (epoll_ctl failed, or
 * no memory): without it the connection would hang, so it is closed. Returns -1. */
static int conn_arm_failed(struct conn *c, const char *what)
{
	int err = errno ? errno : ENOMEM;
	char name[64];

	log_warn("arming %s for %s failed: %s", what, conn_peer(c, name, sizeof(name)),
		 strerror(err));
	conn_close(c, CLOSE_ERROR, err);
	return -1;
}

/* How often the write deadline looks at the peer's acknowledgements (see
 * conn_on_write_timeout): a quarter of write_timeout, so a close comes at most that late. */
static int64_t conn_write_look_ms(const struct conn *c)
{
	int64_t ms = c->srv->cfg->write_timeout / 4;

	return ms > 0 ? ms : 1;
}

/* Output is queued: wait for the socket to be writable, and give the peer write_timeout
 * to make room. 0, or -1 when the connection had to be closed (also when the write
 * deadline's alarm cannot be created or armed: without it a peer that never reads would
 * hold its connection and its queued echo for ever). */
static int conn_write_arm(struct conn *c)
{
	const struct server *srv = c->srv;
	struct conn_out *o = c->out;

	if (!event_pending(&o->ev_write, EV_WRITE, NULL) && event_add(&o->ev_write, NULL) < 0)
		return conn_arm_failed(c, "EV_WRITE");
	if (srv->cfg->write_timeout <= 0)
		return 0;
	if (conn_timer(c, &o->ev_wtimeout, conn_on_write_timeout) == NULL)
		return conn_arm_failed(c, "the write deadline");
	if (!evtimer_pending(o->ev_wtimeout, NULL)) {
		struct timeval look = clock_ms_to_tv(conn_write_look_ms(c));
		uint32_t mss;

		o->wto_us = clock_mono_us();
		if (tcpinfo_bytes_acked(c->fd, &o->wto_acked, &mss) < 0)
			o->wto_acked = UINT64_MAX; /* unknown: only our own writes count */
		if (evtimer_add(o->ev_wtimeout, &look) < 0)
			return conn_arm_failed(c, "the write deadline");
	}
	return 0;
}

/* CONN_ACT_PAUSE, at the high watermark: stop reading, so a peer that does not read its
 * echo cannot make us buffer without bound. Its FIN is then watched with EV_CLOSED
 * (ev_write is armed, see the top of the file). The heartbeat is suspended: write_timeout
 * covers a peer that is not reading. 0, or -1 when the connection had to be closed. */
static int conn_pause(struct conn *c)
{
	c->flags |= CONN_PAUSED;
	event_del(&c->ev_read);
	event_del(&c->ev_heartbeat);
	if (!c->srv->cfg->early_close || (c->flags & CONN_PEER_FIN))
		return 0;
	assert(c->out != NULL); /* paused at the watermark: echo is queued */
	if (c->out->ev_closed == NULL)
		c->out->ev_closed = event_new(c->srv->base, c->fd, EV_CLOSED, conn_on_closed, c);
	if (c->out->ev_closed == NULL || event_add(c->out->ev_closed, NULL) < 0)
		return conn_arm_failed(c, "EV_CLOSED");
	return 0;
}

/* CONN_ACT_RESUME, at half the watermark (hysteresis: a pause lasts more than one write).
 * No EOF can have been read while paused (reading was stopped), so reading restarts. 0,
 * or -1 when the connection had to be closed. */
static int conn_resume(struct conn *c)
{
	c->flags &= ~CONN_PAUSED;
	if (c->out->ev_closed != NULL) /* paused: the write side exists */
		event_del(c->out->ev_closed);
	if (event_add(&c->ev_read, NULL) < 0)
		return conn_arm_failed(c, "EV_READ");
	if (!(c->flags & CONN_PEER_FIN))
		return conn_heartbeat_start(c);
	return 0;
}

/* The write side, allocated at the first queued echo (see struct conn_out); NULL when
 * out of memory (nothing half made is kept). */
static struct conn_out *conn_out_get(struct conn *c)
{
	struct conn_out *o = c->out;

	if (o != NULL)
		return o;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->buf = evbuffer_new();
	if (o->buf == NULL) {
		free(o);
		return NULL;
	}
	event_assign(&o->ev_write, c->srv->base, c->fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	c->out = o;
	return o;
}

static int conn_queue(struct conn *c, const char *data, size_t n)
{
	struct conn_out *o = conn_out_get(c);

	if (o == NULL || evbuffer_add(o->buf, data, n) < 0) {
		conn_close(c, CLOSE_ERROR, ENOMEM);
		return -1;
	}
	return 0;
}

/* Always -1: the connection is closed. */
static int conn_fail(struct conn *c, int err)
{
	conn_close(c, stats_reason_for_errno(err), err);
	return -1;
}

/* Echo: send straight back what was read; queue only what the kernel did not take (and
 * everything while older output is still queued, to keep the order); conn_decide pauses
 * reading at the watermark. 0, or -1 when the connection was closed. */
static int conn_on_data(struct conn *c, const char *data, size_t n)
{
	struct server *srv = c->srv;

	/* Once our FIN is sent, input is read and discarded. */
	if (c->flags & CONN_SHUT_WR)
		return 0;
	c->rx_us = clock_mono_us(); /* the heartbeat deadline moves (no event_add) */
	if (conn_out_len(c) == 0) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
		if (w < 0 && !sock_errno_transient(errno))
			return conn_fail(c, errno);
		if (w > 0) {
			srv->stats.bytes_out += (uint64_t)w;
			data += w;
			n -= (size_t)w;
		}
		if (n == 0)
			return 0;
	}
	return conn_queue(c, data, n) < 0 ? -1 : conn_write_arm(c);
}

/* The peer's FIN is known: from EPOLLRDHUP while paused, or from recv()==0 with echo
 * still queued (CONN_ACT_NOTE_FIN; with nothing queued the EOF closes at once and needs
 * no deadline, so a fin_timeout alarm that cannot be armed costs only the connections
 * that need one). The heartbeat ends here; fin_timeout bounds the time left to flush the
 * echo. 0, or -1 when the fin_timeout alarm could not be created or armed and the
 * connection was closed (reason error): without it a half-closed peer that never reads
 * would keep it for ever. */
static int conn_note_fin(struct conn *c)
{
	const struct server *srv = c->srv;
	struct conn_end *e;

	if (c->flags & CONN_PEER_FIN)
		return 0;
	c->flags |= CONN_PEER_FIN;
	c->fin_us = clock_mono_us();
	event_del(&c->ev_heartbeat);
	if (srv->fin_tv == NULL)
		return 0;
	e = conn_end_get(c);
	if (e == NULL || conn_timer(c, &e->ev_fin, conn_on_fin_timeout) == NULL ||
	    evtimer_add(e->ev_fin, srv->fin_tv) < 0)
		return conn_arm_failed(c, "the fin_timeout deadline");
	return 0;
}

/* recv() returned 0: nothing more to read. Reading stops (the EOF stays readable, and
 * level-triggered epoll would report it on every loop: leaky mode must not spin either).
 * conn_decide does the rest: close now when nothing is queued (the usual case, so
 * CLOSE_WAIT lasts only as long as the flush of the echo), else note the FIN and close
 * once the echo is flushed; with close_on_eof=no, ignore it (the classic bug). */
static void conn_on_eof(struct conn *c)
{
	c->flags |= CONN_EOF_READ;
	event_del(&c->ev_read);
}

/* CONN_ACT_IGNORE_EOF (close_on_eof=no): the socket is never closed, it stays in
 * CLOSE_WAIT. */
static int conn_ignore_eof(struct conn *c)
{
	char name[64];

	c->flags |= CONN_EOF_IGNORED;
	c->srv->stats.eof_ignored++;
	log_debug("eof from %s ignored (close_on_eof=no): socket stays in CLOSE_WAIT",
		  conn_peer(c, name, sizeof(name)));
	return 0;
}

/* CONN_ACT_CLOSE_EOF: the peer's EOF is read and its echo flushed. Always -1. */
static int conn_close_eof(struct conn *c)
{
	if (!(c->flags & CONN_PEER_FIN))
		c->fin_us = clock_mono_us(); /* closed at once; else its FIN time is kept */
	conn_close(c, CLOSE_EOF, 0);
	return -1;
}

/* One non-blocking read and what follows from it (echo, EOF, error). 1 when bytes were
 * read, 0 when there was nothing to read or the EOF left the connection open (flushing),
 * -1 when the connection was closed. */
static int conn_read_once(struct conn *c)
{
	struct server *srv = c->srv;
	ssize_t n = recv(c->fd, srv->scratch, srv->scratch_len, 0);

	if (n > 0) {
		srv->stats.bytes_in += (uint64_t)n;
		if (conn_on_data(c, srv->scratch, (size_t)n) < 0)
			return -1;
	} else if (n == 0) {
		conn_on_eof(c);
	} else if (!sock_errno_transient(errno)) {
		return conn_fail(c, errno);
	}
	return conn_settle(c) < 0 ? -1 : n > 0;
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_read_once(arg);
}

/* ---- flush ------------------------------------------------------------------------- */

/* Writes what the kernel takes of the queued echo; once it is all written, the socket is
 * no longer watched for room and the write deadline ends. The bytes written (0 or more),
 * or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	struct conn_out *o = c->out;
	int n = evbuffer_write(o->buf, c->fd);

	if (n < 0 && !sock_errno_transient(errno))
		return conn_fail(c, errno);
	if (n > 0) {
		c->srv->stats.bytes_out += (uint64_t)n;
		o->wto_us = clock_mono_us(); /* progress: the write deadline moves */
	}
	if (conn_out_len(c) == 0) { /* the part is kept (struct conn_out says why) */
		event_del(&o->ev_write);
		if (o->ev_wtimeout != NULL)
			evtimer_del(o->ev_wtimeout);
	}
	return conn_settle(c) < 0 ? -1 : (n > 0 ? n : 0);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush(arg);
}

/* EPOLLRDHUP while paused: the peer half-closed and is perhaps not reading either. */
static void conn_on_closed(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (conn_kept(c, conn_note_fin(c)) == 0)
		conn_settle(c);
}

/* ---- deadlines --------------------------------------------------------------------- */

/* An alarm rang for the deadline start_us + timeout_ms (CLOCK_MONOTONIC). 1 when it has
 * passed; otherwise the alarm is re-armed for what is left (at most look_ms, when that is
 * not 0) and 0 returned; -1 (errno kept) when it could not be re-armed. */
static int conn_deadline_due(struct event *alarm, int64_t start_us, int64_t timeout_ms,
			     int64_t look_ms)
{
	int64_t left = start_us + timeout_ms * 1000 - clock_mono_us();
	struct timeval tv;

	if (left <= 0)
		return 1;
	if (look_ms > 0 && left > look_ms * 1000)
		left = look_ms * 1000;
	tv = clock_us_to_tv(left);
	errno = 0; /* event_add may fail without setting it: not a stale recv's EAGAIN */
	return evtimer_add(alarm, &tv) < 0 ? -1 : 0;
}

/* Closes for a deadline that conn_deadline_due found passed (due 1: reason) or could not
 * re-arm (due -1: reason error, since the connection would otherwise lose its deadline);
 * due 0 leaves it open. */
static void conn_deadline_close(struct conn *c, int due, enum close_reason reason)
{
	if (due > 0)
		conn_close(c, reason, 0);
	else if (due < 0)
		conn_arm_failed(c, "a deadline's alarm");
}

/* While the heartbeat runs the connection is being read: not paused, no FIN known, our
 * own FIN not sent (each of those ends or suspends it). */
static int conn_heartbeat_running(const struct conn *c)
{
	return !(c->flags & (CONN_PAUSED | CONN_PEER_FIN | CONN_SHUT_WR));
}

/* By the clock the peer sent nothing for heartbeat_timeout; after a stall of the loop that
 * is the clock's word only. The read path runs once first (recv does not block): input
 * waiting is echoed and restarts the deadline, an EOF takes the EOF path (reason eof), an
 * error its own reason; only an empty receive queue is silence. */
static void conn_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int64_t timeout = c->srv->cfg->heartbeat_timeout;
	int due = conn_deadline_due(&c->ev_heartbeat, c->rx_us, timeout, 0);

	(void)fd;
	(void)what;
	if (due == 1) {
		if (conn_kept(c, conn_read_once(c)) < 0)
			return; /* closed by the read path: c is gone */
		if (!conn_heartbeat_running(c))
			return; /* the read paused reading or found the FIN: no heartbeat now */
		due = conn_deadline_due(&c->ev_heartbeat, c->rx_us, timeout, 0);
	}
	conn_deadline_close(c, due, CLOSE_HEARTBEAT);
}

/* Room in the kernel's send queue: empty, or no more than two thirds full, which is when
 * the kernel reports the socket writable (sk_stream_is_writeable: free space at least
 * half of what is queued). The peer has taken what we gave it; if echo is still queued
 * here, it is because the loop did not run, not because the peer stopped reading. */
static int conn_send_room(const struct conn *c)
{
	int queued, size;

	if (sock_send_queue(c->fd, &queued, &size) < 0)
		return 0; /* unknown: the clock decides, as before */
	return queued == 0 || (int64_t)queued * 3 <= (int64_t)size * 2;
}

/* Progress is not only a write of ours. The kernel reports the socket writable only once
 * a third of its send buffer is free, and that buffer grows to megabytes: a peer reading
 * slowly can take data for longer than write_timeout without one write of ours (seen once
 * in about eight runs of tests/integration/test_server_write_timeout.py: a peer reading
 * 2 MB/s closed with write_timeout 1 s). So the alarm rings every quarter of write_timeout
 * while output is queued, and a full segment (MSS) or more acknowledged since the last
 * progress counts as progress at the time of the ring: never early, at most a quarter
 * late. Acknowledged means taken into the peer's receive buffer, so a peer that stops
 * reading is closed write_timeout after that buffer is full. A segment, not a byte: a peer
 * must not hold its queue open by acknowledging a byte at a time. */
static void conn_note_acked(struct conn *c)
{
	struct conn_out *o = c->out;
	uint64_t acked;
	uint32_t mss;

	if (o->wto_acked != UINT64_MAX && tcpinfo_bytes_acked(c->fd, &acked, &mss) == 0 &&
	    acked - o->wto_acked >= (mss > 0 ? mss : 1)) {
		o->wto_acked = acked;
		o->wto_us = clock_mono_us();
	}
}

/* Before a write-timeout close, the send queue is asked (conn_send_room): with room in
 * it the stall was ours, so the echo is written now, which restarts the deadline; a
 * flush that empties the queue ends it. This also covers a kernel without
 * tcpi_bytes_acked, where only our own writes count as progress. */
static void conn_on_write_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_out *o = c->out;
	int64_t timeout = c->srv->cfg->write_timeout;
	int due;

	(void)fd;
	(void)what;
	conn_note_acked(c);
	due = conn_deadline_due(o->ev_wtimeout, o->wto_us, timeout, conn_write_look_ms(c));
	if (due == 1 && conn_send_room(c)) {
		if (conn_kept(c, conn_flush(c)) < 0)
			return; /* closed (an error, or the flush ended an EOF'd connection) */
		if (conn_out_len(c) == 0)
			return; /* all written: conn_flush ended the deadline */
		due = conn_deadline_due(o->ev_wtimeout, o->wto_us, timeout, conn_write_look_ms(c));
	}
	conn_deadline_close(c, due, CLOSE_WRITE_TIMEOUT);
}

/* fin_timeout stays an absolute deadline from the FIN, stall or not: it bounds how long a
 * half-closed peer may take to read its echo, however the time was spent. */
static void conn_on_fin_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int due = conn_deadline_due(c->end->ev_fin, c->fin_us, c->srv->cfg->fin_timeout, 0);

	(void)fd;
	(void)what;
	conn_deadline_close(c, due, CLOSE_FIN_TIMEOUT);
}

/* ---- graceful drain ---------------------------------------------------------------- */

/* Our FIN goes out at a quiet point (conn_decide): nothing queued for the peer and
 * nothing unread in the receive queue, so every byte received before it has been echoed.
 * Then input is read and discarded until the peer's EOF: closing with unread input would
 * send an RST, and an RST discards the echo still in our send queue. A connection whose
 * EOF was read and ignored (close_on_eof=no) has nothing left to read: once its echo is
 * flushed it is closed, and close() sends the FIN after the send queue. Either way
 * shutdown_timeout bounds the flush (server.c). */
void conn_drain(struct conn *c)
{
	conn_end_start(c, 0, c->srv->cfg->drain_grace);
}

/* ---- gentler endings: max_connection_age, the drain's turn, the grace --------------- */

/* What ev_end rings for. A connection's ending goes AGE or TURN (not ending yet), then
 * HALF (our FIN at a quiet point, as any drain), then RESET (half the grace passed: our
 * FIN once the echo is flushed, CONN_FIN_DUE), then the reset at the grace's end. */
enum conn_end_step { END_NONE, END_AGE, END_TURN, END_HALF, END_RESET };

/* ev_end rings at due_us for step. 0, or -1 when it could not be armed and the connection
 * was closed (reason error: it would otherwise never end). */
static int conn_end_arm(struct conn *c, int step, int64_t due_us)
{
	int64_t left = due_us - clock_mono_us();
	struct timeval tv = clock_us_to_tv(left > 0 ? left : 0);
	struct conn_end *e = conn_end_get(c);

	if (e == NULL)
		return conn_arm_failed(c, "the ending's timer");
	e->step = step;
	e->due_us = due_us;
	errno = 0; /* event_add may fail without setting it */
	if (conn_timer(c, &e->ev_end, conn_on_end) == NULL || evtimer_add(e->ev_end, &tv) < 0)
		return conn_arm_failed(c, "the ending's timer");
	return 0;
}

/* The age this connection may reach: max_connection_age +- jitter, drawn uniformly, so
 * connections accepted together (a reconnect storm) do not all end together again. */
static int conn_age_start(struct conn *c)
{
	const struct server_config *cfg = c->srv->cfg;
	double j = (double)cfg->max_connection_age_jitter / 100.0;
	double age_us = (double)cfg->max_connection_age * 1000.0 *
			(1.0 + j * (2.0 * server_random(c->srv) - 1.0));

	if (cfg->max_connection_age <= 0)
		return 0;
	return conn_end_arm(c, END_AGE, c->born_us + (int64_t)age_us);
}

/* The drain begins for this connection (aged: CONN_AGED, reason max-age): our FIN at its
 * next quiet point (conn_decide); with a grace, ev_end rings at half of it. Not again for
 * a connection already ending. 0, or -1 when the connection was closed. */
static int conn_end_start(struct conn *c, unsigned aged, int64_t grace_ms)
{
	int64_t now = clock_mono_us();
	struct conn_end *e;

	if (c->flags & CONN_DRAINING)
		return 0;
	e = conn_end_get(c);
	if (e == NULL)
		return conn_arm_failed(c, "the ending");
	if (e->step == END_TURN)
		c->srv->stats.drain_left--;
	c->flags |= CONN_DRAINING | aged;
	e->start_us = now;
	e->grace_ms = grace_ms;
	e->step = END_NONE;
	if (e->ev_end != NULL)
		evtimer_del(e->ev_end);
	if (grace_ms > 0 && conn_end_arm(c, END_HALF, now + grace_ms * 500) < 0)
		return -1;
	return conn_settle(c);
}

int conn_drain_at(struct conn *c, int64_t at_us)
{
	if (c->flags & CONN_DRAINING)
		return 0;
	c->srv->stats.drain_left++;
	if (conn_end_arm(c, END_TURN, at_us) < 0)
		return -1;
	return 0;
}

int conn_drain_waiting(const struct conn *c)
{
	return c->end != NULL && c->end->step == END_TURN;
}

/* The grace is over: whatever still holds the connection (a peer that does not read its
 * echo, or does not answer our FIN) costs it an RST, counted under the ending's reason. */
static void conn_end_reset(struct conn *c)
{
	char name[64];

	log_debug("%s: grace of %lldms over, resetting", conn_peer(c, name, sizeof(name)),
		  (long long)c->end->grace_ms);
	conn_abort(c, (c->flags & CONN_AGED) ? CLOSE_MAX_AGE : CLOSE_SHUTDOWN);
}

/* libevent's coarse clock may ring early (see the top of the file): a step is taken only
 * once CLOCK_MONOTONIC says it is due, else the timer is armed again for what is left. */
static void conn_on_end(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct server_config *cfg = c->srv->cfg;
	struct conn_end *e = c->end;

	(void)fd;
	(void)what;
	if (clock_mono_us() < e->due_us) {
		conn_end_arm(c, e->step, e->due_us);
		return;
	}
	switch (e->step) {
	case END_AGE:
		conn_end_start(c, CONN_AGED, cfg->max_connection_age_grace);
		break;
	case END_TURN:
		conn_end_start(c, 0, cfg->drain_grace);
		break;
	case END_HALF:
		c->flags |= CONN_FIN_DUE;
		if (conn_kept(c, conn_settle(c)) == 0)
			conn_end_arm(c, END_RESET, e->start_us + e->grace_ms * 1000);
		break;
	case END_RESET:
		conn_end_reset(c);
		break;
	}
}

/* Why shutdown() failed. On a socket the peer has reset (state CLOSE) shutdown() fails
 * with ENOTCONN and does not report the pending ECONNRESET; SO_ERROR does (reading it
 * clears it). A socket in CLOSE with no pending error was reset too (the error was already
 * taken by an earlier call), so ENOTCONN then counts as ECONNRESET: reason reset. */
static int conn_shutdown_errno(const struct conn *c, int err)
{
	int so_err = 0;
	socklen_t len = sizeof(so_err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_err, &len) == 0 && so_err != 0)
		return so_err;
	return err == ENOTCONN ? ECONNRESET : err;
}

/* CONN_ACT_ASK_UNREAD: 1 when input waits in the receive queue, else 0 (also when SIOCINQ
 * fails: the FIN is then sent as if nothing were unread, the worst being an RST later). */
static int conn_unread(const struct conn *c)
{
	int unread = 0;

	return ioctl(c->fd, SIOCINQ, &unread) == 0 && unread > 0;
}

/* CONN_ACT_SHUT_WR: our FIN. The heartbeat ends (input is only read and discarded now).
 * 0, or -1 when shutdown() failed and the connection was closed. */
static int conn_shut_wr(struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR) < 0)
		return conn_fail(c, conn_shutdown_errno(c, errno));
	c->flags |= CONN_SHUT_WR;
	c->end->shut_us = clock_mono_us(); /* a drain's (conn_facts_broken): the part exists */
	event_del(&c->ev_heartbeat);
	return 0;
}

/* SO_LINGER {1, 0}: the close() that follows sends RST. A failure only costs the RST
 * (the close still happens), so it is logged at debug level. */
static void conn_linger_reset(const struct conn *c)
{
	if (sock_set_linger_reset(c->fd) < 0)
		log_debug("SO_LINGER on fd %d: %s", c->fd, strerror(errno));
}

void conn_abort(struct conn *c, enum close_reason reason)
{
	conn_linger_reset(c);
	conn_close(c, reason, 0);
}

/* ---- what next: one decision ------------------------------------------------------- */

const char *conn_facts_broken(const struct conn_facts *f, bool at_rest)
{
	unsigned fl = f->flags;

	if ((fl & CONN_SHUT_WR) && !(fl & CONN_DRAINING))
		return "our FIN sent outside a drain";
	if ((fl & (CONN_AGED | CONN_FIN_DUE)) && !(fl & CONN_DRAINING))
		return "a max-age ending or a due FIN outside a drain";
	if ((fl & CONN_SHUT_WR) && f->out > 0)
		return "echo queued behind our FIN";
	if ((fl & CONN_PAUSED) && (fl & (CONN_EOF_READ | CONN_SHUT_WR)))
		return "paused after recv()==0 or after our FIN";
	if ((fl & CONN_EOF_IGNORED) && (f->close_on_eof || (fl & CONN_SHUT_WR) ||
					!(fl & CONN_EOF_READ) || !(fl & CONN_PEER_FIN)))
		return "an EOF ignored with close_on_eof, after our FIN, unread or not noted";
	/* without EPOLLRDHUP the FIN is noted only after recv()==0, and never with our FIN
	 * sent (recv()==0 then ends the drain at once) */
	if ((fl & CONN_PEER_FIN) && ((fl & CONN_SHUT_WR) || !(fl & CONN_EOF_READ)) &&
	    !f->early_close)
		return "a FIN known before recv()==0 without early_close";
	if (!at_rest)
		return NULL;
	if ((fl & CONN_PAUSED) && f->out == 0)
		return "paused with nothing queued (no EV_WRITE armed to see an RST)";
	if (!(fl & (CONN_PAUSED | CONN_EOF_READ)) && f->out >= f->high)
		return "reading with the echo at the high watermark";
	if ((fl & CONN_EOF_READ) && ((fl & CONN_SHUT_WR) || !(fl & CONN_PEER_FIN)))
		return "recv()==0 after our FIN, or without fin_timeout, left open";
	if ((fl & CONN_EOF_READ) && (f->close_on_eof ? f->out == 0 : !(fl & CONN_EOF_IGNORED)))
		return "recv()==0 with the echo flushed left open, or not counted as ignored";
	if ((fl & CONN_DRAINING) && !(fl & CONN_SHUT_WR) && f->out == 0 && f->unread != 1)
		return "a drain at its quiet point without our FIN";
	if ((fl & CONN_FIN_DUE) && !(fl & CONN_SHUT_WR) && f->out == 0)
		return "a due FIN not sent with the echo flushed";
	return NULL;
}

/* The end of a drain: reason max-age when max_connection_age began it. */
static enum conn_action conn_close_drained(unsigned fl)
{
	return (fl & CONN_AGED) ? CONN_ACT_CLOSE_MAX_AGE : CONN_ACT_CLOSE_SHUTDOWN;
}

/* The rules, in order: the drain is complete once both FINs are exchanged; reading pauses
 * at the high watermark and resumes at half of it; an EOF closes once the echo is flushed
 * (close_on_eof), else is ignored, and while echo is queued fin_timeout runs from it; a
 * drain sends our FIN at a quiet point (nothing queued, nothing unread), or, half its
 * grace gone, once nothing is queued (what is unread then is read after our FIN and
 * discarded), or closes a connection whose EOF it ignored once the echo is flushed. A
 * drain begun by max_connection_age ends with reason max-age. conn_settle applies each
 * answer and asks again: each one changes the facts it was given, so the answers end in
 * CONN_ACT_WAIT or a close. */
enum conn_action conn_decide(const struct conn_facts *f)
{
	unsigned fl = f->flags;

	assert(conn_facts_broken(f, false) == NULL);
	if ((fl & CONN_SHUT_WR) && (fl & CONN_EOF_READ))
		return conn_close_drained(fl);
	if ((fl & CONN_PAUSED) && f->out <= f->high / 2)
		return CONN_ACT_RESUME;
	if (!(fl & (CONN_PAUSED | CONN_EOF_READ)) && f->out >= f->high)
		return CONN_ACT_PAUSE; /* after recv()==0 there is no reading left to pause */
	if (fl & CONN_EOF_READ) {
		if (f->close_on_eof && f->out == 0)
			return CONN_ACT_CLOSE_EOF;
		if (!(fl & CONN_PEER_FIN))
			return CONN_ACT_NOTE_FIN;
		if (!f->close_on_eof && !(fl & CONN_EOF_IGNORED))
			return CONN_ACT_IGNORE_EOF;
	}
	if ((fl & CONN_DRAINING) && !(fl & CONN_SHUT_WR) && f->out == 0) {
		if (fl & CONN_EOF_IGNORED)
			return conn_close_drained(fl);
		if (fl & CONN_FIN_DUE)
			return CONN_ACT_SHUT_WR;
		if (f->unread < 0)
			return CONN_ACT_ASK_UNREAD;
		if (f->unread == 0)
			return CONN_ACT_SHUT_WR;
	}
	assert(conn_facts_broken(f, true) == NULL);
	return CONN_ACT_WAIT;
}

const char *conn_action_name(enum conn_action a)
{
	static const char *const names[] = {
	    [CONN_ACT_WAIT] = "wait",
	    [CONN_ACT_ASK_UNREAD] = "ask-unread",
	    [CONN_ACT_PAUSE] = "pause",
	    [CONN_ACT_RESUME] = "resume",
	    [CONN_ACT_NOTE_FIN] = "note-fin",
	    [CONN_ACT_IGNORE_EOF] = "ignore-eof",
	    [CONN_ACT_SHUT_WR] = "shut-wr",
	    [CONN_ACT_CLOSE_EOF] = "close-eof",
	    [CONN_ACT_CLOSE_SHUTDOWN] = "close-shutdown",
	    [CONN_ACT_CLOSE_MAX_AGE] = "close-max-age",
	};

	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

static struct conn_facts conn_facts_of(const struct conn *c)
{
	const struct server_config *cfg = c->srv->cfg;

	return (struct conn_facts){
	    .flags = c->flags,
	    .out = conn_out_len(c),
	    .high = (size_t)cfg->output_high_watermark,
	    .unread = -1,
	    .close_on_eof = cfg->close_on_eof != 0,
	    .early_close = cfg->early_close != 0,
	};
}

/* 0, or -1 when the action closed the connection. */
static int conn_apply(struct conn *c, enum conn_action a)
{
	switch (a) {
	case CONN_ACT_PAUSE:
		return conn_pause(c);
	case CONN_ACT_RESUME:
		return conn_resume(c);
	case CONN_ACT_NOTE_FIN:
		return conn_note_fin(c);
	case CONN_ACT_IGNORE_EOF:
		return conn_ignore_eof(c);
	case CONN_ACT_SHUT_WR:
		return conn_shut_wr(c);
	case CONN_ACT_CLOSE_EOF:
		return conn_close_eof(c);
	case CONN_ACT_CLOSE_SHUTDOWN:
		conn_close(c, CLOSE_SHUTDOWN, 0); /* both FINs, or close() sends ours */
		return -1;
	case CONN_ACT_CLOSE_MAX_AGE:
		conn_close(c, CLOSE_MAX_AGE, 0);
		return -1;
	case CONN_ACT_WAIT:
	case CONN_ACT_ASK_UNREAD:
		break;
	}
	return 0;
}

/* The end of every handler: what its event implies, applied until there is nothing to do
 * but wait. 0, or -1 when the connection was closed. */
static int conn_settle(struct conn *c)
{
	struct conn_facts f = conn_facts_of(c);
	enum conn_action a;

	while ((a = conn_decide(&f)) != CONN_ACT_WAIT) {
		if (a == CONN_ACT_ASK_UNREAD) {
			f.unread = conn_unread(c);
			continue;
		}
		if (conn_kept(c, conn_apply(c, a)) < 0)
			return -1;
		f = conn_facts_of(c);
	}
	return 0;
}

/* ---- close ------------------------------------------------------------------------- */

static int is_dead_peer_close(enum close_reason r)
{
	return r == CLOSE_HEARTBEAT || r == CLOSE_WRITE_TIMEOUT || r == CLOSE_FIN_TIMEOUT;
}

static void conn_log_close(const struct conn *c, enum close_reason reason, int err,
			   int64_t fin_to_close, int64_t now)
{
	long long age_ms = (long long)(now - c->born_us) / 1000;
	int64_t shut_us = c->end != NULL ? c->end->shut_us : 0;
	long long shut_age_ms = shut_us ? (long long)(shut_us - c->born_us) / 1000 : -1;
	char name[64];

	if (reason == CLOSE_ERROR)
		log_warn("close peer=%s reason=error: %s", conn_peer(c, name, sizeof(name)),
			 strerror(err));
	else
		log_debug("close peer=%s reason=%s fin_to_close_us=%lld age_ms=%lld "
			  "shut_age_ms=%lld%s%s",
			  conn_peer(c, name, sizeof(name)), stats_reason_name(reason),
			  (long long)fin_to_close, age_ms, shut_age_ms, err ? " errno=" : "",
			  err ? strerrorname_np(err) : "");
}

/* The parts (struct conn_out, struct conn_end) and what they hold, if made. */
static void conn_out_free(struct conn *c)
{
	struct conn_out *o = c->out;

	if (o == NULL)
		return;
	event_del(&o->ev_write);
	if (o->ev_closed != NULL)
		event_free(o->ev_closed);
	if (o->ev_wtimeout != NULL)
		event_free(o->ev_wtimeout);
	evbuffer_free(o->buf);
	free(o);
	c->out = NULL;
}

static void conn_end_free(struct conn *c)
{
	struct conn_end *e = c->end;

	if (e == NULL)
		return;
	if (e->ev_fin != NULL)
		event_free(e->ev_fin);
	if (e->ev_end != NULL)
		event_free(e->ev_end);
	free(e);
	c->end = NULL;
}

/* Exactly one close per connection, with one reason. A peer the server believes dead
 * (heartbeat, write-timeout, fin-timeout) is reset with reset_dead_peers: a plain close
 * would leave an orphaned FIN_WAIT_1 / LAST_ACK socket retransmitting to it. */
static void conn_close(struct conn *c, enum close_reason reason, int err)
{
	struct server *srv = c->srv;
	int64_t now = clock_mono_us();
	int64_t fin_to_close = c->fin_us ? now - c->fin_us : -1;

	if (srv->cfg->reset_dead_peers && is_dead_peer_close(reason))
		conn_linger_reset(c);
	event_del(&c->ev_read);
	event_del(&c->ev_heartbeat);
	conn_out_free(c); /* before the close: its events watch the fd */
	if (close(c->fd) < 0)
		log_debug("close fd %d: %s", c->fd, strerror(errno));
	conn_log_close(c, reason, err, fin_to_close, now);
	if (c->end != NULL && c->end->step == END_TURN)
		srv->stats.drain_left--;
	conn_end_free(c); /* after the log, which reads our FIN's time */
	srv->stats.closed[reason]++;
	srv->stats.open--;
	if (fin_to_close >= 0)
		hist_record(&srv->stats.fin_to_close_us, (uint64_t)fin_to_close);
	hist_record(&srv->stats.conn_duration_us, (uint64_t)(now - c->born_us));
	TAILQ_REMOVE(&srv->conns, c, link);
	free(c);
	server_conn_closed(srv);
}
