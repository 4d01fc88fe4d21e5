#include "conn.h"
#include "clock.h"
#include "fault.h"
#include "log.h"
#include "reconnect.h"
#include "schedule.h"
#include "sock.h"

#include <errno.h>
#include <math.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads per readable event before other connections get their turn. */
#define READS_PER_EVENT 8

enum cstate {
	CS_CONNECTING,	/* connect() in progress */
	CS_FIRST,	/* connected, waiting for the first echo */
	CS_ECHO,	/* established, exchanging messages */
	CS_HOLD,	/* idle / silent: established, held */
	CS_HALF_CLOSED, /* half-close: our FIN sent, reading the rest and the server's FIN */
	CS_WAIT,	/* --reconnect: closed by the server; its slot reconnects (no socket) */
	/* vanish, in this order: */
	CS_DYING, /* its drop rule is queued for the next nft call */
	CS_DEAD,  /* vanished: its packets are dropped; held, sending nothing */
	CS_BURIED /* closed; its drop rule is queued for deletion, then the slot is free */
};

/* How a vanish connection ends (struct conn.outcome): as planned, closed by the server
 * before its drop rule took effect, or a failure kind (> 0). */
#define OUTCOME_DONE   0
#define OUTCOME_CLOSED -1

struct conn {
	struct conn_env *env;
	int fd;
	uint64_t slot;
	uint64_t id;
	uint8_t scen;
	uint8_t state;
	uint8_t stopping;     /* no new messages; finish when the outstanding ones are answered */
	uint8_t assigned;     /* rev, wev, tev are set up */
	uint8_t reconnecting; /* a reconnect not established yet (or waiting to be made) */
	uint8_t open;	      /* open loop: its messages go on its schedule (sched) */
	uint32_t attempts;    /* reconnects of this connection so far (the delay's jitter) */
	uint64_t planned;     /* messages to send (UINT64_MAX: until the run ends) */
	uint64_t sent;	      /* messages completely written */
	uint64_t send_off;    /* bytes of message `sent` written so far */
	uint64_t recvd;	      /* messages completely echoed */
	uint64_t recv_off;    /* bytes of message `recvd` echoed so far */
	int64_t hold_ms;      /* held: how long once established (0: until the run ends) */
	int64_t t_connect, t_fin, t_last_send, hold_until; /* us */
	int outcome;					   /* vanish: OUTCOME_* or a failure kind */
	char elem[FAULT_ELEM_MAX];			   /* vanish: its element of the drop set */
	struct event rev, wev, tev;
	/* Open loop (client/schedule.h): its schedule from its intended open time; due.n
	 * messages have come due; the due times of messages below gen.n are in the ring. */
	int64_t t_start;
	struct sched sched;
	struct sched_cursor due, gen;
	/* [3 x pipeline], by message number modulo --pipeline: when each unanswered message's
	 * first byte went out; open loop: its due time, and when its pipeline slot was free
	 * (the echo of the message --pipeline before it, or the connect). */
	int64_t ring[];
};
#define SENT_AT(c, seq) ((c)->ring[(seq) % (uint64_t)(c)->env->o->pipeline])
#define DUE_AT(c, seq)                                                                             \
	((c)->ring[(uint64_t)(c)->env->o->pipeline + (seq) % (uint64_t)(c)->env->o->pipeline])
#define READY_AT(c, seq)                                                                           \
	((c)->ring[2 * (uint64_t)(c)->env->o->pipeline + (seq) % (uint64_t)(c)->env->o->pipeline])

static void conn_send(struct conn *c);
static void conn_arm(struct conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);

static int64_t now_us(void)
{
	return clock_mono_us();
}

/* Where what is measured goes: the run's result, or during --warmup a scratch one that
 * nobody reads (the warm-up is left out of every histogram and rate; its failures are
 * counted apart, in warmup_failed). */
static struct result *conn_m(struct conn_env *e)
{
	return e->scratch != NULL && now_us() < e->warm_until ? e->scratch : e->r;
}

static enum phase conn_phase(const struct conn *c)
{
	switch (c->state) {
	case CS_CONNECTING:
		return PHASE_CONNECT;
	case CS_FIRST:
		return PHASE_FIRST_REPLY;
	case CS_HALF_CLOSED:
		return PHASE_CLOSE;
	default:
		return PHASE_ECHO;
	}
}

/* Messages with at least one byte written and not completely echoed. */
static uint64_t conn_outstanding(const struct conn *c)
{
	return c->sent + (c->send_off > 0) - c->recvd;
}

/* ---- open loop ---- */

/* Counts the messages that have come due by now (none once the connection is ending: the
 * run's end ends its schedule). */
static void conn_due_advance(struct conn *c, int64_t now)
{
	while (!c->stopping && c->due.n < c->planned && c->due.due_us <= (double)now) {
		sched_next(&c->sched, &c->due);
		conn_m(c->env)->msgs_due++;
	}
}

/* The due time of message seq, which is the next to start or one started before (a
 * resend after a reconnect keeps its due time). */
static int64_t conn_due_of(struct conn *c, uint64_t seq)
{
	while (c->gen.n <= seq) {
		DUE_AT(c, c->gen.n) = (int64_t)ceil(c->gen.due_us);
		sched_next(&c->sched, &c->gen);
	}
	return DUE_AT(c, seq);
}

/* Message seq goes out at now: late when its pipeline slot was not free at its due time
 * (the server's slowness, a connect or reconnect), else the client's own lateness. */
static void conn_lateness(struct conn *c, uint64_t seq, int64_t now)
{
	struct result *r = conn_m(c->env);
	int64_t due = conn_due_of(c, seq);
	uint64_t lag = now > due ? (uint64_t)(now - due) : 0;

	if (READY_AT(c, seq) > due) {
		r->late_sends++;
		hist_record(&r->late_us, lag);
	} else {
		hist_record(&r->send_lag_us, lag);
	}
}

/* At the connection's end: the messages that came due and were never sent. */
static void conn_count_unsent(struct conn *c)
{
	if (!c->open)
		return;
	conn_due_advance(c, now_us());
	conn_m(c->env)->unsent += c->due.n - (c->sent + (c->send_off > 0));
}

/* ---- a connection's end ---- */

/* Lets go of the socket and its events: the connection no longer counts as open. */
static void conn_detach(struct conn *c)
{
	struct conn_env *e = c->env;

	if (c->assigned) {
		event_del(&c->rev);
		event_del(&c->wev);
		event_del(&c->tev);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == CS_WAIT) {
		e->waiting--;
		return;
	}
	if (c->state == CS_CONNECTING || c->state == CS_FIRST)
		e->connecting--;
	if (c->state == CS_HALF_CLOSED)
		e->halfclosed--;
	e->live--;
	e->r->open_now = e->live;
	e->r->connecting_now = e->connecting;
	e->r->closing_now = e->halfclosed;
}

void conn_free(struct conn *c)
{
	conn_count_unsent(c);
	conn_detach(c);
	free(c);
}

/* --reconnect: the server closed c, or a reconnect of it failed. It keeps its slot, its
 * id and its messages, without a socket, and reconnects after the delay; the messages
 * not completely echoed are sent again from their first byte (the same bytes: the pattern
 * is a function of the id and the message number). */
static void conn_wait(struct conn *c)
{
	struct conn_env *e = c->env;
	struct timeval tv;

	conn_detach(c);
	c->state = CS_WAIT;
	e->waiting++;
	c->reconnecting = 1;
	c->sent = c->recvd;
	c->send_off = 0;
	c->recv_off = 0;
	if (c->planned <= c->recvd)
		c->planned = c->recvd + 1; /* silent: one message makes it established again */
	if (!c->assigned)
		evtimer_assign(&c->tev, e->base, conn_timer_cb, c);
	tv = clock_us_to_tv(reconnect_delay_us(e->o->reconnect_delay_ms, c->id, c->attempts));
	evtimer_add(&c->tev, &tv);
}
static const char *fail_hint(int kind)
{
	switch (kind) {
	case EADDRNOTAVAIL:
		return "ephemeral ports exhausted: spread the load with --sources";
	case EMFILE:
		return "this process is at its fd limit: use more --procs";
	case ENFILE:
		return "the system is out of file descriptors";
	case ECONNREFUSED:
		return "nothing listens there, or its SYN queue refused us";
	case FAIL_DEADLINE:
		return "the server did not answer in time";
	case FAIL_EOF:
		return "the server closed the connection early";
	case FAIL_MISMATCH:
		return "the echo differs from what was sent";
	case FAIL_CRASH_PORTS:
		return "crash ports used up: every port of ip_local_port_range for this source "
		       "address (this worker's share of it) was used by an earlier crash this "
		       "run, and reusing one would reset the server's stale socket; add "
		       "--crash-source/--sources or shorten the run";
	default:
		return "";
	}
}

/* Ends a connection with a failure, counted by phase and kind, explained once. */
static void conn_fail(struct conn *c, int kind)
{
	struct conn_env *e = c->env;
	enum phase ph = conn_phase(c);
	uint64_t slot = c->slot;
	char buf[16];

	if (conn_m(e) != e->r)
		e->r->warmup_failed++;
	result_fail(conn_m(e), ph, kind);
	if (kind > 0 && kind < FAIL_KINDS && !e->logged[ph][kind]) {
		e->logged[ph][kind] = 1;
		log_warn("connection %llu to %s failed in phase %s: %s%s%s%s %s; counted, further "
			 "ones of this kind are only counted",
			 (unsigned long long)c->id, e->o->server, phase_name(ph),
			 fail_kind_name(kind, buf, sizeof(buf)), kind < FAIL_ERRNO_MAX ? " (" : "",
			 kind < FAIL_ERRNO_MAX ? strerror(kind) : "",
			 kind < FAIL_ERRNO_MAX ? ")" : "", fail_hint(kind));
	}
	/* A reconnect that failed (nothing listens yet: a restart) is tried again while the
	 * run lasts; in a one-pass run the slot gives up, so the run ends. */
	if (c->reconnecting && kind != FAIL_BACKLOG && e->o->duration_ms > 0 && !e->stopping) {
		conn_wait(c);
		return;
	}
	conn_free(c);
	e->ended(e->owner, slot, 1);
}

static void conn_done(struct conn *c)
{
	struct conn_env *e = c->env;
	uint64_t slot = c->slot;

	e->r->completed++;
	conn_free(c);
	e->ended(e->owner, slot, 0);
}

/* Counts a close by the server that is not a failure; for a held connection, with the
 * time since its last byte (the server's idle or heartbeat timeout). */
static void closed_count(struct conn *c)
{
	struct conn_env *e = c->env;

	e->r->closed_by_server++;
	if (c->state == CS_HOLD || c->state >= CS_DYING)
		hist_record(&conn_m(e)->server_close_us, (uint64_t)(now_us() - c->t_last_send));
}

/* A connection the server closed (EOF or RST) as the run expects: a held silent one (the
 * outcome the scenario measures), or any with --reconnect when it is not replaced. */
static void conn_closed_by_server(struct conn *c)
{
	struct conn_env *e = c->env;
	uint64_t slot = c->slot;

	closed_count(c);
	conn_free(c);
	e->ended(e->owner, slot, 0);
}

/* The server closed c (its FIN: kind FAIL_EOF; its RST: the errno) while the scenario
 * still wanted it (client/reconnect.h). */
static void conn_server_closed(struct conn *c, int kind)
{
	struct conn_env *e = c->env;
	struct close_facts f = {
	    .reconnect = e->o->reconnect,
	    .stopping = c->stopping || e->stopping,
	    .held = c->state == CS_HOLD,
	    .silent = c->scen == SCEN_SILENT,
	};

	e->r->interrupted += conn_outstanding(c);
	switch (reconnect_verdict(&f)) {
	case CLOSE_FAILED:
		conn_fail(c, kind);
		return;
	case CLOSE_BY_SERVER:
		conn_closed_by_server(c);
		return;
	case CLOSE_RECONNECT:
		closed_count(c);
		conn_wait(c);
		return;
	}
}

static void conn_half_close(struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_fail(c, errno);
		return;
	}
	c->t_fin = now_us();
	if (c->state == CS_CONNECTING || c->state == CS_FIRST)
		c->env->connecting--;
	c->env->r->connecting_now = c->env->connecting;
	c->state = CS_HALF_CLOSED;
	c->env->halfclosed++;
	c->env->r->closing_now = c->env->halfclosed;
	conn_arm(c);
}

/* ---- dead peers: crash, vanish ---- */

/* crash: the socket disappears without a word (deadpeer.h). */
static void conn_crash(struct conn *c)
{
	struct conn_env *e = c->env;

	if (deadpeer_crash(c->fd) < 0) {
		conn_fail(c, errno);
		return;
	}
	result_dead(&e->r->crashed, 1, result_unix_us());
	conn_done(c); /* the close() */
}

/* vanish, after the first echo: its drop rule joins the next nft call. 1 when the
 * connection ended instead. */
static int conn_vanish(struct conn *c)
{
	struct conn_env *e = c->env;

	if (fault_element(c->fd, c->elem, sizeof(c->elem)) < 0) {
		conn_fail(c, errno);
		return 1;
	}
	c->state = CS_DYING;
	event_del(&c->tev);
	deadpeer_join(e->vanish, c->elem, c);
	return 0;
}

/* The end of a vanished connection: close() with RST (dropped like everything else, so
 * the server still sees nothing), then its rule leaves the set at the next nft call,
 * before its slot may open a connection that could get the same port. */
static void conn_bury(struct conn *c, int outcome)
{
	c->outcome = outcome;
	event_del(&c->rev);
	event_del(&c->wev);
	event_del(&c->tev);
	if (sock_set_linger_reset(c->fd) < 0)
		log_debug("connection %llu: SO_LINGER: %s (closing with a FIN, dropped too)",
			  (unsigned long long)c->id, strerror(errno));
	close(c->fd);
	c->fd = -1;
	c->state = CS_BURIED;
	deadpeer_leave(c->env->vanish, c->elem, c);
}

/* A vanish connection must end (hold over, run over, or its socket reported something).
 * One waiting for its rule ends right after the rule is in. */
static void conn_dead_end(struct conn *c, int outcome)
{
	if (c->state == CS_DYING && !c->stopping) {
		c->stopping = 1;
		c->outcome = outcome;
		event_del(&c->rev); /* an EOF stays readable */
	} else if (c->state == CS_DEAD) {
		conn_bury(c, outcome);
	}
}

/* Its rule is gone: counted by how it ended, the slot freed. */
static void conn_forget(struct conn *c)
{
	if (c->outcome == OUTCOME_DONE)
		conn_done(c);
	else if (c->outcome == OUTCOME_CLOSED)
		conn_closed_by_server(c);
	else
		conn_fail(c, c->outcome);
}

/* The rules of one batch are in: these connections vanished now. */
static void batch_vanished(struct conn_env *e, void *const *cs, size_t n)
{
	int64_t now = now_us();

	if (n > 0)
		result_dead(&e->r->vanished, n, result_unix_us());
	for (size_t i = 0; i < n; i++) {
		struct conn *c = cs[i];
		c->state = CS_DEAD;
		if (c->stopping) {
			conn_bury(c, c->outcome);
			continue;
		}
		/* Held like silent: for its hold, or until the run ends (its plan). */
		c->hold_until = c->hold_ms > 0 ? now + c->hold_ms * 1000 : 0;
		conn_arm(c);
	}
}

/* nft failed: nothing more can vanish or be cleaned up safely; the run ends. */
static void batch_failed(struct conn_env *e, void *const *joined, size_t nj, void *const *left,
			 size_t nl)
{
	if (!e->fatal)
		log_error("vanish: nft could not update the drop rules (its message is above): "
			  "ending the run");
	e->fatal = 1;
	e->stop(e->owner); /* first: no slot may open a new connection */
	for (size_t i = 0; i < nj; i++)
		conn_fail(joined[i], EIO);
	for (size_t i = 0; i < nl; i++) {
		struct conn *c = left[i];
		c->outcome = EIO;
		conn_forget(c);
	}
}

void conn_vanish_done(void *env, void *const *joined, size_t nj, void *const *left, size_t nl,
		      int ok)
{
	if (!ok) {
		batch_failed(env, joined, nj, left, nl);
		return;
	}
	for (size_t i = 0; i < nl; i++)
		conn_forget(left[i]);
	batch_vanished(env, joined, nj);
}

/* The scenario's ending, once every message is answered. */
static void conn_finish(struct conn *c)
{
	switch (c->scen) {
	case SCEN_HALF_CLOSE:
		conn_half_close(c);
		return;
	case SCEN_RESET:
		/* SO_LINGER {1, 0}: close() sends RST and discards what is queued. */
		if (sock_set_linger_reset(c->fd) < 0) {
			conn_fail(c, errno);
			return;
		}
		conn_done(c);
		return;
	case SCEN_CRASH:
		conn_crash(c);
		return;
	default: /* echo, close, idle, silent: a plain close(), our FIN */
		conn_done(c);
		return;
	}
}

/* After progress: ends the connection when its scenario says so. 1 when it ended. */
static int conn_check_end(struct conn *c)
{
	if (c->state >= CS_DYING)
		return 0; /* vanish: its ending is the hold timer, or its close */
	if (c->state == CS_HALF_CLOSED || conn_outstanding(c) > 0)
		return 0;
	if (c->state == CS_HOLD && c->scen == SCEN_VANISH)
		return conn_vanish(c);
	if (c->state == CS_HOLD && !c->stopping)
		return 0;
	if (c->stopping || c->sent >= c->planned) {
		conn_finish(c);
		return 1;
	}
	return 0;
}

/* ---- receiving ---- */

static void conn_established(struct conn *c)
{
	struct conn_env *e = c->env;

	e->r->established++;
	e->connecting--;
	e->r->connecting_now = e->connecting;
	c->reconnecting = 0;
	c->state = scenario_holds(c->scen) ? CS_HOLD : CS_ECHO;
	/* Held for its hold (its plan), or until the run ends. A reconnect keeps its hold. */
	if (c->state == CS_HOLD && c->hold_until == 0 && c->hold_ms > 0)
		c->hold_until = now_us() + c->hold_ms * 1000;
	e->handshake_over(e->owner);
}

/* Checks received bytes against the pattern; counts complete messages. -1 when the
 * connection ended (mismatch). */
static int conn_consume(struct conn *c, const unsigned char *p, size_t n)
{
	struct conn_env *e = c->env;
	uint64_t size = (uint64_t)e->o->size, rtt;
	int64_t now;

	while (n > 0) {
		/* Bytes of message `recvd` that we have sent and not yet seen back. */
		uint64_t avail = c->recvd < c->sent    ? size - c->recv_off
				 : c->recvd == c->sent ? c->send_off - c->recv_off
						       : 0;
		size_t take = n < avail ? n : (size_t)avail;
		if (take == 0 || pattern_check(c->id, c->recvd, c->recv_off, p, take) != take) {
			e->r->echo_mismatch++;
			conn_fail(c, FAIL_MISMATCH);
			return -1;
		}
		p += take;
		n -= take;
		c->recv_off += take;
		if (c->recv_off < size)
			continue;
		now = now_us();
		rtt = (uint64_t)(now - SENT_AT(c, c->recvd));
		hist_record(&conn_m(e)->rtt_us, rtt);
		if (c->open) {
			hist_record(&conn_m(e)->latency_us, (uint64_t)(now - DUE_AT(c, c->recvd)));
			READY_AT(c, c->recvd) = now; /* for message recvd + pipeline */
		}
		conn_m(e)->messages++;
		c->recvd++;
		c->recv_off = 0;
		if (c->state == CS_FIRST) {
			/* The first message is sent as the handshake completes (conn_connected)
			 * unless an open-loop schedule holds it: its round trip includes the
			 * server's accept and first read. */
			hist_record(&conn_m(e)->first_echo_us, rtt);
			conn_established(c);
		}
	}
	return 0;
}

static void conn_eof(struct conn *c)
{
	struct conn_env *e = c->env;

	if (c->state >= CS_DYING)
		conn_dead_end(c, OUTCOME_CLOSED); /* its FIN came before the drop rule */
	else if (c->state == CS_HALF_CLOSED && conn_outstanding(c) == 0) {
		hist_record(&conn_m(e)->fin_to_fin_us, (uint64_t)(now_us() - c->t_fin));
		conn_done(c);
	} else if (c->state == CS_HALF_CLOSED) {
		conn_fail(c, FAIL_EOF); /* its echo must come before the server's FIN */
	} else {
		conn_server_closed(c, FAIL_EOF);
	}
}

static void conn_error(struct conn *c, int err)
{
	if (c->state >= CS_DYING)
		conn_dead_end(c, err == ECONNRESET ? OUTCOME_CLOSED : err);
	else if ((err == ECONNRESET || err == EPIPE) && c->state != CS_HALF_CLOSED)
		conn_server_closed(c, err); /* EPIPE: our send after the server's RST */
	else
		conn_fail(c, err);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_env *e = c->env;

	(void)what;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(fd, e->buf, sizeof(e->buf), 0);
		if (n > 0) {
			conn_m(e)->bytes_received += (uint64_t)n;
			if (conn_consume(c, e->buf, (size_t)n) < 0)
				return;
			if ((size_t)n < sizeof(e->buf))
				break;
			continue;
		}
		if (n == 0) {
			conn_eof(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_error(c, errno);
		return;
	}
	if (conn_check_end(c))
		return;
	conn_send(c);
}

/* ---- sending ---- */

/* When an idle connection's next heartbeat is due: --heartbeat after its last send, at
 * the next multiple of --heartbeat-tick (CLOCK_MONOTONIC, the same clock in every process)
 * when one is given. Without a tick each heartbeat is a timer of its own: at 1,000,000
 * connections and one heartbeat a minute that is a wake-up of some client process, then
 * of some server worker, then of the client again for the echo, 16,700 times a second
 * each; with a tick every process wakes once per tick for all of its due heartbeats, and
 * the workers find several in one epoll_wait. The interval becomes --heartbeat to
 * --heartbeat + tick. */
static int64_t conn_heartbeat_due(const struct conn *c)
{
	const struct client_opts *o = c->env->o;
	int64_t due = c->t_last_send + o->heartbeat_ms * 1000, tick = o->heartbeat_tick_ms * 1000;

	return tick > 0 ? (due + tick - 1) / tick * tick : due;
}

/* May message `seq` start now? */
static int conn_may_start(const struct conn *c, uint64_t seq, int64_t now)
{
	const struct client_opts *o = c->env->o;

	if (c->stopping || seq >= c->planned || c->state == CS_HALF_CLOSED)
		return 0;
	if (seq - c->recvd >= (uint64_t)o->pipeline)
		return 0;
	if (c->open)
		return seq < c->due.n; /* due by now (conn_due_advance) */
	/* idle: a heartbeat every --heartbeat once established; a reconnect's first
	 * message goes at once, as a new connection's. */
	if (c->scen == SCEN_IDLE && seq > 0 && c->state != CS_FIRST)
		return seq == c->recvd && now >= conn_heartbeat_due(c);
	return 1;
}

/* Generates into buf, from where sending stands, as many bytes as may go now. */
static size_t conn_fill(struct conn *c, int64_t now)
{
	uint64_t size = (uint64_t)c->env->o->size, seq = c->sent, off = c->send_off;
	size_t pos = 0;

	while (pos < sizeof(c->env->buf)) {
		size_t n;
		if (off == 0 && !conn_may_start(c, seq, now))
			break;
		n = sizeof(c->env->buf) - pos;
		if (n > size - off)
			n = (size_t)(size - off);
		pattern_fill(c->id, seq, off, c->env->buf + pos, n);
		pos += n;
		off += n;
		if (off == size) {
			seq++;
			off = 0;
		}
	}
	return pos;
}

/* Advances the send position by n written bytes, stamping each message started. */
static void conn_advance(struct conn *c, size_t n, int64_t now)
{
	uint64_t size = (uint64_t)c->env->o->size;

	while (n > 0) {
		uint64_t take = size - c->send_off;
		if (c->send_off == 0) {
			SENT_AT(c, c->sent) = now;
			c->t_last_send = now;
			if (c->open)
				conn_lateness(c, c->sent, now);
		}
		if (take > n)
			take = n;
		c->send_off += take;
		n -= (size_t)take;
		if (c->send_off == size) {
			c->sent++;
			c->send_off = 0;
		}
	}
}

/* Open loop: counts what has come due; a backlog above --max-backlog fails the
 * connection (-1: it ended), so that due messages are never dropped unsaid. */
static int conn_due_update(struct conn *c, int64_t now)
{
	uint64_t backlog;

	if (!c->open)
		return 0;
	conn_due_advance(c, now);
	backlog = c->due.n - (c->sent + (c->send_off > 0));
	if (backlog > (uint64_t)c->env->o->max_backlog) {
		conn_fail(c, FAIL_BACKLOG);
		return -1;
	}
	return 0;
}

static void conn_send(struct conn *c)
{
	struct conn_env *e = c->env;

	if (conn_due_update(c, now_us()) < 0)
		return;
	for (;;) {
		int64_t now = now_us();
		size_t len = conn_fill(c, now);
		ssize_t n;
		if (len == 0)
			break;
		n = send(c->fd, e->buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(&c->wev, NULL);
			break;
		}
		if (n < 0) {
			conn_error(c, errno);
			return;
		}
		conn_m(e)->bytes_sent += (uint64_t)n;
		conn_advance(c, (size_t)n, now);
		if ((size_t)n < len) {
			event_add(&c->wev, NULL);
			break;
		}
	}
	/* half-close: the FIN goes right after the last message, before its echo. */
	if (c->scen == SCEN_HALF_CLOSE && c->state == CS_ECHO && c->send_off == 0 &&
	    (c->sent >= c->planned || c->stopping)) {
		conn_half_close(c);
		return;
	}
	conn_arm(c);
}

/* ---- timers ---- */

/* The connection's next deadline (us), or 0 for none. */
static int64_t conn_next_deadline(const struct conn *c)
{
	const struct client_opts *o = c->env->o;
	int64_t next = 0;

#define EARLIER(t) (next = (next == 0 || (t) < next) ? (t) : next)
	if (c->state == CS_CONNECTING)
		EARLIER(c->t_connect + o->connect_timeout_ms * 1000);
	if (conn_outstanding(c) > 0)
		EARLIER(SENT_AT(c, c->recvd) + o->reply_timeout_ms * 1000);
	if (c->state == CS_HALF_CLOSED)
		EARLIER(c->t_fin + o->reply_timeout_ms * 1000);
	if ((c->state == CS_HOLD || c->state == CS_DEAD) && c->hold_until > 0 && !c->stopping)
		EARLIER(c->hold_until);
	if (c->state == CS_HOLD && c->scen == SCEN_IDLE && conn_outstanding(c) == 0 && !c->stopping)
		EARLIER(conn_heartbeat_due(c));
	/* Open loop: the next message's due time, also while the pipeline is full (the
	 * backlog is counted then). */
	if (c->open && !c->stopping && (c->state == CS_FIRST || c->state == CS_ECHO) &&
	    c->due.n < c->planned)
		EARLIER((int64_t)ceil(c->due.due_us));
#undef EARLIER
	return next;
}

static void conn_arm(struct conn *c)
{
	int64_t next = conn_next_deadline(c);
	struct timeval tv;

	if (next == 0) {
		event_del(&c->tev);
		return;
	}
	tv = clock_us_to_tv(next - now_us());
	event_add(&c->tev, &tv);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct client_opts *o = c->env->o;
	int64_t now = now_us();

	(void)fd;
	(void)what;
	if (c->state == CS_WAIT) {
		c->env->reconnect_due(c->env->owner, c->slot);
		return;
	}
	if (c->state >= CS_DYING) {
		if (c->state == CS_DEAD && c->hold_until > 0 && now >= c->hold_until)
			conn_bury(c, OUTCOME_DONE);
		else if (c->state == CS_DEAD)
			conn_arm(c);
		return;
	}
	if (c->state == CS_CONNECTING && now >= c->t_connect + o->connect_timeout_ms * 1000) {
		conn_fail(c, FAIL_DEADLINE);
		return;
	}
	if ((conn_outstanding(c) > 0 && now >= SENT_AT(c, c->recvd) + o->reply_timeout_ms * 1000) ||
	    (c->state == CS_HALF_CLOSED && now >= c->t_fin + o->reply_timeout_ms * 1000)) {
		conn_fail(c, FAIL_DEADLINE);
		return;
	}
	if (c->state == CS_HOLD && c->hold_until > 0 && now >= c->hold_until)
		c->stopping = 1;
	if (conn_check_end(c))
		return;
	conn_send(c);
}

/* ---- connecting ---- */

static void conn_connected(struct conn *c)
{
	struct conn_env *e = c->env;

	int64_t now = now_us();

	e->r->connected++;
	hist_record(&conn_m(e)->connect_us, (uint64_t)(now - c->t_connect));
	if (!c->reconnecting)
		hist_record(&conn_m(e)->connect_due_us, (uint64_t)(now - c->t_start));
	for (int64_t i = 0; c->open && i < e->o->pipeline; i++)
		READY_AT(c, c->recvd + (uint64_t)i) = now;
	c->state = CS_FIRST;
	event_add(&c->rev, NULL);
	conn_send(c);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (c->state == CS_CONNECTING) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			conn_fail(c, err);
			return;
		}
		conn_connected(c);
		return;
	}
	conn_send(c);
}

/* Socket options and source address of a new client socket. 0, or the failure kind (an
 * errno value, or FAIL_CRASH_PORTS). */
static int conn_setup(struct conn *c)
{
	const struct client_opts *o = c->env->o;

	if (sock_set_nodelay(c->fd) < 0)
		return errno;
	if (o->keepalive[0] > 0 &&
	    sock_set_keepalive(c->fd, (int)(o->keepalive[0] / 1000), (int)(o->keepalive[1] / 1000),
			       (int)o->keepalive[2]) < 0)
		return errno;
	if (o->user_timeout_ms > 0 &&
	    sock_set_user_timeout(c->fd, (unsigned)o->user_timeout_ms) < 0)
		return errno;
	if (c->scen == SCEN_CRASH) {
		/* Its own source address (in a mix) and a port no earlier crash of the run
		 * used: no connection can reuse a crashed 4-tuple. */
		return crashport_bind(c->env->crash_ports, c->fd, c->id);
	} else if (c->env->plan->nsources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = plan_source(c->env->plan, c->id);
		/* IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect(), per destination,
		 * so every source address has the whole ephemeral range towards the server. */
		if (sock_set_bind_no_port(c->fd) < 0)
			return errno;
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			return errno;
	}
	return 0;
}

struct conn *conn_new(struct conn_env *e, uint64_t slot, const struct plan_conn *pc)
{
	struct conn *c = calloc(1, sizeof(*c) + 3 * sizeof(int64_t) * (size_t)e->o->pipeline);

	if (c == NULL)
		return NULL;
	c->env = e;
	c->fd = -1;
	c->slot = slot;
	c->id = pc->id;
	c->scen = (uint8_t)pc->scenario;
	c->planned = pc->messages;
	c->hold_ms = pc->hold_ms;
	c->state = CS_CONNECTING;
	c->t_start = pc->start_us;
	c->open = pc->msg_rate > 0;
	if (c->open) {
		sched_init(&c->sched, pc->msg_rate, pc->arrivals, pc->id, pc->start_us);
		sched_first(&c->sched, &c->due);
		c->gen = c->due;
	}
	return c;
}

void conn_start(struct conn *c)
{
	struct conn_env *e = c->env;
	const struct client_opts *o = e->o;
	int rc;

	if (c->state == CS_WAIT) { /* a reconnect */
		e->waiting--;
		e->r->reconnects++;
		c->attempts++;
		c->state = CS_CONNECTING;
	}
	e->r->attempted++;
	e->r->by_scenario[c->scen]++;
	e->live++;
	e->connecting++;
	e->r->open_now = e->live;
	e->r->connecting_now = e->connecting;
	c->t_connect = now_us();
	c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, errno);
		return;
	}
	rc = conn_setup(c);
	if (rc != 0) {
		conn_fail(c, rc);
		return;
	}
	event_assign(&c->rev, e->base, c->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_assign(&c->wev, e->base, c->fd, EV_WRITE, conn_write_cb, c);
	evtimer_assign(&c->tev, e->base, conn_timer_cb, c);
	c->assigned = 1;
	rc = connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen);
	if (e->ports != NULL && (rc == 0 || errno == EINPROGRESS)) {
		int saved = errno;
		own_ports_add_fd(e->ports, c->fd); /* the port is chosen by now */
		errno = saved;
	}
	if (rc == 0) {
		conn_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		conn_fail(c, errno);
		return;
	}
	event_add(&c->wev, NULL);
	conn_arm(c);
}

/* ---- the end of the run ---- */

void conn_stop(struct conn *c)
{
	struct conn_env *e = c->env;
	uint64_t slot = c->slot;

	if (c->state == CS_WAIT) { /* not reconnected: it was counted when the server closed */
		conn_free(c);
		e->ended(e->owner, slot, 0);
		return;
	}
	if (c->state >= CS_DYING) {
		conn_dead_end(c, OUTCOME_DONE);
		return;
	}
	if (c->state == CS_CONNECTING ||
	    (c->state == CS_FIRST && c->sent == 0 && c->send_off == 0)) {
		e->r->cancelled++;
		conn_free(c);
		e->ended(e->owner, slot, 0);
		return;
	}
	conn_due_advance(c, now_us()); /* the schedule ends with the run */
	c->stopping = 1;
	if (c->state == CS_HALF_CLOSED)
		return;
	if (!conn_check_end(c))
		conn_arm(c);
}
