#include "driver.h"
#include "clock.h"
#include "crashport.h"
#include "fault.h"
#include "log.h"
#include "reconnect.h"
#include "sock.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes read or generated per system call. */
#define IO_CHUNK (64 * 1024)
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

struct driver;

struct conn {
	struct driver *d;
	int fd;
	uint64_t slot;
	uint64_t id;
	uint8_t scen;
	uint8_t state;
	uint8_t stopping;  /* no new messages; finish when the outstanding ones are answered */
	uint8_t assigned;  /* rev, wev, tev are set up */
	uint8_t reconnecting; /* a reconnect not established yet (or waiting to be made) */
	uint32_t attempts;    /* reconnects of this connection so far (the delay's jitter) */
	uint64_t planned;  /* messages to send (UINT64_MAX: until the run ends) */
	uint64_t sent;	   /* messages completely written */
	uint64_t send_off; /* bytes of message `sent` written so far */
	uint64_t recvd;	   /* messages completely echoed */
	uint64_t recv_off; /* bytes of message `recvd` echoed so far */
	int64_t hold_ms;   /* held: how long once established (0: until the run ends) */
	int64_t t_connect, t_fin, t_last_send, hold_until; /* us */
	int outcome;					   /* vanish: OUTCOME_* or a failure kind */
	char elem[FAULT_ELEM_MAX];			   /* vanish: its element of the drop set */
	struct event rev, wev, tev;
	int64_t sent_at[]; /* [pipeline]: when each unanswered message's first byte went out */
};

struct driver {
	const struct client_opts *o;
	const struct plan *plan;
	struct plan_worker pw; /* this worker's connections, in order */
	struct event_base *base;
	struct result *r;
	struct own_ports *ports; /* NULL: not recorded */
	int worker, nworkers;
	uint64_t nslots;
	struct conn **slots;
	uint64_t *queue, qhead, qlen; /* slots waiting to open a connection */
	uint64_t *waitq, whead, wlen; /* slots waiting out --backoff */
	int64_t *wait_until;
	uint64_t connecting, live, halfclosed;
	/* --reconnect: connections in CS_WAIT (not live: no socket), and the slots whose
	 * delay is over, waiting for a token of --reconnect-rate, in order. */
	uint64_t waiting;
	uint64_t *rq, rhead, rlen;
	struct bucket reconnect_bucket;
	struct event *reconnect_ev;
	double rate, tokens; /* per second, this worker's share */
	int64_t t_tokens;
	int stopping, signals;
	int pumping; /* driver_pump is running: a nested call returns at once */
	int64_t t_start;
	struct event *pump_ev, *stop_ev, *tick_ev, *sigint_ev, *sigterm_ev, *backoff_ev;
	/* vanish: connections waiting for the next nft call (one per loop iteration), to join
	 * (add) or leave (del) the drop set; the spare arrays take a batch in flight. */
	struct event *fault_ev;
	struct conn **add_q, **del_q, **add_spare, **del_spare;
	char **elems;
	uint64_t nadd, ndel;
	int fatal;		  /* nft failed: the run ends, exit status 1 */
	struct crashports *crash_ports; /* crash: source ports used this run */
	driver_tick_fn tick;
	void *tick_arg;
	unsigned char logged[PHASE_N][FAIL_KINDS]; /* explained once per kind */
	unsigned char buf[IO_CHUNK];
};

static void conn_send(struct conn *c);
static void conn_arm(struct conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void driver_pump(struct driver *d);
static void driver_stop(struct driver *d);

static int64_t now_us(void)
{
	return clock_mono_us();
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

/* ---- slots ---- */

/* Nothing open and nothing more to open. */
static int driver_finished(const struct driver *d)
{
	return d->live == 0 && d->waiting == 0 &&
	       (d->stopping || (d->o->duration_ms == 0 && d->qlen == 0));
}

static void driver_maybe_done(struct driver *d)
{
	if (driver_finished(d))
		event_base_loopbreak(d->base);
}

static void slot_enqueue(struct driver *d, uint64_t slot)
{
	d->queue[(d->qhead + d->qlen) % d->nslots] = slot;
	d->qlen++;
}

/* Slots waiting out --backoff, in the order they failed (all wait the same time). */
static void slot_backoff(struct driver *d, uint64_t slot)
{
	uint64_t i = (d->whead + d->wlen) % d->nslots;

	d->waitq[i] = slot;
	d->wait_until[i] = clock_mono_us() + d->o->backoff_ms * 1000;
	if (d->wlen++ == 0) {
		struct timeval tv = clock_ms_to_tv(d->o->backoff_ms);
		evtimer_add(d->backoff_ev, &tv);
	}
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	int64_t now = clock_mono_us();

	(void)fd;
	(void)what;
	while (d->wlen > 0 && d->wait_until[d->whead] <= now) {
		slot_enqueue(d, d->waitq[d->whead]);
		d->whead = (d->whead + 1) % d->nslots;
		d->wlen--;
	}
	if (d->wlen > 0) {
		struct timeval tv = clock_us_to_tv(d->wait_until[d->whead] - now);
		evtimer_add(d->backoff_ev, &tv);
	}
	driver_pump(d);
}

/* A slot's connection ended. With --duration it opens another one (after --backoff when
 * it failed, so a refusing server is not hammered in a tight loop). */
static void slot_end(struct driver *d, uint64_t slot, int failed)
{
	d->slots[slot] = NULL;
	if (d->stopping || d->o->duration_ms == 0) {
		driver_maybe_done(d);
		driver_pump(d);
		return;
	}
	if (failed && d->o->backoff_ms > 0)
		slot_backoff(d, slot);
	else
		slot_enqueue(d, slot);
	driver_pump(d);
}

/* ---- a connection's end ---- */

/* Lets go of the socket and its events: the connection no longer counts as open. */
static void conn_detach(struct conn *c)
{
	struct driver *d = c->d;

	if (c->assigned) {
		event_del(&c->rev);
		event_del(&c->wev);
		event_del(&c->tev);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == CS_WAIT) {
		d->waiting--;
		return;
	}
	if (c->state == CS_CONNECTING || c->state == CS_FIRST)
		d->connecting--;
	if (c->state == CS_HALF_CLOSED)
		d->halfclosed--;
	d->live--;
	d->r->open_now = d->live;
	d->r->closing_now = d->halfclosed;
}

static void conn_free(struct conn *c)
{
	conn_detach(c);
	free(c);
}

/* --reconnect: the server closed c, or a reconnect of it failed. It keeps its slot, its
 * id and its messages, without a socket, and reconnects after the delay; the messages
 * not completely echoed are sent again from their first byte (the same bytes: the pattern
 * is a function of the id and the message number). */
static void conn_wait(struct conn *c)
{
	struct driver *d = c->d;
	struct timeval tv;

	conn_detach(c);
	c->state = CS_WAIT;
	d->waiting++;
	c->reconnecting = 1;
	c->sent = c->recvd;
	c->send_off = 0;
	c->recv_off = 0;
	if (c->planned <= c->recvd)
		c->planned = c->recvd + 1; /* silent: one message makes it established again */
	if (!c->assigned)
		evtimer_assign(&c->tev, d->base, conn_timer_cb, c);
	tv = clock_us_to_tv(reconnect_delay_us(d->o->reconnect_delay_ms, c->id, c->attempts));
	evtimer_add(&c->tev, &tv);
}

/* The slots whose delay is over open in that order, as --reconnect-rate allows, through
 * the queue of every new connection (--rate and --max-connecting apply too). */
static void reconnect_pump(struct driver *d)
{
	while (d->rlen > 0 && !d->stopping) {
		int64_t wait = bucket_take(&d->reconnect_bucket, now_us());
		if (wait > 0) {
			struct timeval tv = clock_us_to_tv(wait);
			evtimer_add(d->reconnect_ev, &tv);
			return;
		}
		slot_enqueue(d, d->rq[d->rhead]);
		d->rhead = (d->rhead + 1) % d->nslots;
		d->rlen--;
	}
	driver_pump(d);
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reconnect_pump(arg);
}

/* A waiting connection's delay is over. */
static void conn_reconnect_due(struct conn *c)
{
	struct driver *d = c->d;

	d->rq[(d->rhead + d->rlen) % d->nslots] = c->slot;
	if (d->rlen++ == 0) /* else the queue's timer is set */
		reconnect_pump(d);
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
	struct driver *d = c->d;
	enum phase ph = conn_phase(c);
	uint64_t slot = c->slot;
	char buf[16];

	result_fail(d->r, ph, kind);
	if (kind > 0 && kind < FAIL_KINDS && !d->logged[ph][kind]) {
		d->logged[ph][kind] = 1;
		log_warn("connection %llu to %s failed in phase %s: %s%s%s%s %s; counted, further "
			 "ones of this kind are only counted",
			 (unsigned long long)c->id, d->o->server, phase_name(ph),
			 fail_kind_name(kind, buf, sizeof(buf)), kind < FAIL_ERRNO_MAX ? " (" : "",
			 kind < FAIL_ERRNO_MAX ? strerror(kind) : "",
			 kind < FAIL_ERRNO_MAX ? ")" : "", fail_hint(kind));
	}
	/* A reconnect that failed (nothing listens yet: a restart) is tried again while the
	 * run lasts; in a one-pass run the slot gives up, so the run ends. */
	if (c->reconnecting && d->o->duration_ms > 0 && !d->stopping) {
		conn_wait(c);
		return;
	}
	conn_free(c);
	slot_end(d, slot, 1);
}

static void conn_done(struct conn *c)
{
	struct driver *d = c->d;
	uint64_t slot = c->slot;

	d->r->completed++;
	conn_free(c);
	slot_end(d, slot, 0);
}

/* Counts a close by the server that is not a failure; for a held connection, with the
 * time since its last byte (the server's idle or heartbeat timeout). */
static void closed_count(struct conn *c)
{
	struct driver *d = c->d;

	d->r->closed_by_server++;
	if (c->state == CS_HOLD || c->state >= CS_DYING)
		hist_record(&d->r->server_close_us, (uint64_t)(now_us() - c->t_last_send));
}

/* A connection the server closed (EOF or RST) as the run expects: a held silent one (the
 * outcome the scenario measures), or any with --reconnect when it is not replaced. */
static void conn_closed_by_server(struct conn *c)
{
	struct driver *d = c->d;
	uint64_t slot = c->slot;

	closed_count(c);
	conn_free(c);
	slot_end(d, slot, 0);
}

/* The server closed c (its FIN: kind FAIL_EOF; its RST: the errno) while the scenario
 * still wanted it (client/reconnect.h). */
static void conn_server_closed(struct conn *c, int kind)
{
	struct driver *d = c->d;
	struct close_facts f = {
	    .reconnect = d->o->reconnect,
	    .stopping = c->stopping || d->stopping,
	    .held = c->state == CS_HOLD,
	    .silent = c->scen == SCEN_SILENT,
	};

	d->r->interrupted += conn_outstanding(c);
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
		c->d->connecting--;
	c->state = CS_HALF_CLOSED;
	c->d->halfclosed++;
	c->d->r->closing_now = c->d->halfclosed;
	conn_arm(c);
}

/* ---- dead peers: crash, vanish ---- */

/* crash: the socket disappears without a word. The last echo's ACK may still be delayed;
 * left unsent, the server would hold unacknowledged data and its first retransmission,
 * rather than the mechanism under test, would meet the RST: TCP_QUICKACK sends it first.
 * Then close() in repair mode sends nothing at all. */
static void conn_crash(struct conn *c)
{
	struct driver *d = c->d;

	if (sock_set_quickack(c->fd) < 0 || sock_set_repair(c->fd, 1) < 0) {
		conn_fail(c, errno);
		return;
	}
	result_dead(&d->r->crashed, 1, result_unix_us());
	conn_done(c); /* the close() */
}

static void fault_schedule(struct driver *d)
{
	event_active(d->fault_ev, EV_TIMEOUT, 1);
}

/* vanish, after the first echo: its drop rule joins the next nft call. 1 when the
 * connection ended instead. */
static int conn_vanish(struct conn *c)
{
	struct driver *d = c->d;

	if (fault_element(c->fd, c->elem, sizeof(c->elem)) < 0) {
		conn_fail(c, errno);
		return 1;
	}
	c->state = CS_DYING;
	event_del(&c->tev);
	d->add_q[d->nadd++] = c;
	fault_schedule(d);
	return 0;
}

/* The end of a vanished connection: close() with RST (dropped like everything else, so
 * the server still sees nothing), then its rule leaves the set at the next nft call,
 * before its slot may open a connection that could get the same port. */
static void conn_bury(struct conn *c, int outcome)
{
	struct driver *d = c->d;

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
	d->del_q[d->ndel++] = c;
	fault_schedule(d);
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
static void batch_vanished(struct driver *d, struct conn **cs, uint64_t n)
{
	int64_t now = now_us();

	if (n > 0)
		result_dead(&d->r->vanished, n, result_unix_us());
	for (uint64_t i = 0; i < n; i++) {
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
static void batch_failed(struct driver *d, struct conn **adds, uint64_t na, struct conn **dels,
			 uint64_t nd)
{
	if (!d->fatal)
		log_error("vanish: nft could not update the drop rules (its message is above): "
			  "ending the run");
	d->fatal = 1;
	driver_stop(d); /* first: no slot may open a new connection */
	for (uint64_t i = 0; i < na; i++)
		conn_fail(adds[i], EIO);
	for (uint64_t i = 0; i < nd; i++) {
		dels[i]->outcome = EIO;
		conn_forget(dels[i]);
	}
}

/* Once per loop iteration with work: one nft transaction for every connection that
 * vanishes or is forgotten. New requests made while a batch is handled go to the other
 * pair of arrays and to the next call. */
static void fault_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	struct conn **adds = d->add_q, **dels = d->del_q;
	uint64_t na = d->nadd, nd = d->ndel;

	(void)fd;
	(void)what;
	d->add_q = d->add_spare;
	d->del_q = d->del_spare;
	d->add_spare = adds;
	d->del_spare = dels;
	d->nadd = d->ndel = 0;
	for (uint64_t i = 0; i < na; i++)
		d->elems[i] = adds[i]->elem;
	for (uint64_t i = 0; i < nd; i++)
		d->elems[na + i] = dels[i]->elem;
	if (fault_update(d->elems, (size_t)na, d->elems + na, (size_t)nd) < 0) {
		batch_failed(d, adds, na, dels, nd);
		return;
	}
	for (uint64_t i = 0; i < nd; i++)
		conn_forget(dels[i]);
	batch_vanished(d, adds, na);
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
	struct driver *d = c->d;

	d->r->established++;
	d->connecting--;
	c->reconnecting = 0;
	c->state = scenario_holds(c->scen) ? CS_HOLD : CS_ECHO;
	/* Held for its hold (its plan), or until the run ends. A reconnect keeps its hold. */
	if (c->state == CS_HOLD && c->hold_until == 0 && c->hold_ms > 0)
		c->hold_until = now_us() + c->hold_ms * 1000;
	driver_pump(d);
}

/* Checks received bytes against the pattern; counts complete messages. -1 when the
 * connection ended (mismatch). */
static int conn_consume(struct conn *c, const unsigned char *p, size_t n)
{
	struct driver *d = c->d;
	uint64_t size = (uint64_t)d->o->size;

	while (n > 0) {
		/* Bytes of message `recvd` that we have sent and not yet seen back. */
		uint64_t avail = c->recvd < c->sent    ? size - c->recv_off
				 : c->recvd == c->sent ? c->send_off - c->recv_off
						       : 0;
		size_t take = n < avail ? n : (size_t)avail;
		if (take == 0 || pattern_check(c->id, c->recvd, c->recv_off, p, take) != take) {
			d->r->echo_mismatch++;
			conn_fail(c, FAIL_MISMATCH);
			return -1;
		}
		p += take;
		n -= take;
		c->recv_off += take;
		if (c->recv_off < size)
			continue;
		hist_record(&d->r->rtt_us,
			    (uint64_t)(now_us() - c->sent_at[c->recvd % (uint64_t)d->o->pipeline]));
		d->r->messages++;
		c->recvd++;
		c->recv_off = 0;
		if (c->state == CS_FIRST)
			conn_established(c);
	}
	return 0;
}

static void conn_eof(struct conn *c)
{
	struct driver *d = c->d;

	if (c->state >= CS_DYING)
		conn_dead_end(c, OUTCOME_CLOSED); /* its FIN came before the drop rule */
	else if (c->state == CS_HALF_CLOSED && conn_outstanding(c) == 0) {
		hist_record(&d->r->fin_to_fin_us, (uint64_t)(now_us() - c->t_fin));
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
	struct driver *d = c->d;

	(void)what;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(fd, d->buf, sizeof(d->buf), 0);
		if (n > 0) {
			d->r->bytes_received += (uint64_t)n;
			if (conn_consume(c, d->buf, (size_t)n) < 0)
				return;
			if ((size_t)n < sizeof(d->buf))
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

/* May message `seq` start now? */
static int conn_may_start(const struct conn *c, uint64_t seq, int64_t now)
{
	const struct client_opts *o = c->d->o;

	if (c->stopping || seq >= c->planned || c->state == CS_HALF_CLOSED)
		return 0;
	if (seq - c->recvd >= (uint64_t)o->pipeline)
		return 0;
	/* idle: a heartbeat every --heartbeat once established; a reconnect's first
	 * message goes at once, as a new connection's. */
	if (c->scen == SCEN_IDLE && seq > 0 && c->state != CS_FIRST)
		return seq == c->recvd && now >= c->t_last_send + o->heartbeat_ms * 1000;
	return 1;
}

/* Generates into buf, from where sending stands, as many bytes as may go now. */
static size_t conn_fill(struct conn *c, int64_t now)
{
	uint64_t size = (uint64_t)c->d->o->size, seq = c->sent, off = c->send_off;
	size_t pos = 0;

	while (pos < sizeof(c->d->buf)) {
		size_t n;
		if (off == 0 && !conn_may_start(c, seq, now))
			break;
		n = sizeof(c->d->buf) - pos;
		if (n > size - off)
			n = (size_t)(size - off);
		pattern_fill(c->id, seq, off, c->d->buf + pos, n);
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
	uint64_t size = (uint64_t)c->d->o->size;

	while (n > 0) {
		uint64_t take = size - c->send_off;
		if (c->send_off == 0) {
			c->sent_at[c->sent % (uint64_t)c->d->o->pipeline] = now;
			c->t_last_send = now;
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

static void conn_send(struct conn *c)
{
	struct driver *d = c->d;

	for (;;) {
		int64_t now = now_us();
		size_t len = conn_fill(c, now);
		ssize_t n;
		if (len == 0)
			break;
		n = send(c->fd, d->buf, len, MSG_NOSIGNAL);
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
		d->r->bytes_sent += (uint64_t)n;
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
	const struct client_opts *o = c->d->o;
	int64_t next = 0;

#define EARLIER(t) (next = (next == 0 || (t) < next) ? (t) : next)
	if (c->state == CS_CONNECTING)
		EARLIER(c->t_connect + o->connect_timeout_ms * 1000);
	if (conn_outstanding(c) > 0)
		EARLIER(c->sent_at[c->recvd % (uint64_t)o->pipeline] + o->reply_timeout_ms * 1000);
	if (c->state == CS_HALF_CLOSED)
		EARLIER(c->t_fin + o->reply_timeout_ms * 1000);
	if ((c->state == CS_HOLD || c->state == CS_DEAD) && c->hold_until > 0 && !c->stopping)
		EARLIER(c->hold_until);
	if (c->state == CS_HOLD && c->scen == SCEN_IDLE && conn_outstanding(c) == 0 && !c->stopping)
		EARLIER(c->t_last_send + o->heartbeat_ms * 1000);
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
	const struct client_opts *o = c->d->o;
	int64_t now = now_us();

	(void)fd;
	(void)what;
	if (c->state == CS_WAIT) {
		conn_reconnect_due(c);
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
	if ((conn_outstanding(c) > 0 &&
	     now >= c->sent_at[c->recvd % (uint64_t)o->pipeline] + o->reply_timeout_ms * 1000) ||
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
	struct driver *d = c->d;

	d->r->connected++;
	hist_record(&d->r->connect_us, (uint64_t)(now_us() - c->t_connect));
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
	const struct client_opts *o = c->d->o;

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
		return crashport_bind(c->d->crash_ports, c->fd, c->id);
	} else if (c->d->plan->nsources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = plan_source(c->d->plan, c->id);
		/* IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect(), per destination,
		 * so every source address has the whole ephemeral range towards the server. */
		if (sock_set_bind_no_port(c->fd) < 0)
			return errno;
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			return errno;
	}
	return 0;
}

static struct conn *conn_new(struct driver *d, uint64_t slot)
{
	struct conn *c = calloc(1, sizeof(*c) + sizeof(int64_t) * (size_t)d->o->pipeline);
	struct plan_conn pc;

	if (c == NULL)
		return NULL;
	plan_next(&d->pw, &pc);
	c->d = d;
	c->fd = -1;
	c->slot = slot;
	c->id = pc.id;
	c->scen = (uint8_t)pc.scenario;
	c->planned = pc.messages;
	c->hold_ms = pc.hold_ms;
	c->state = CS_CONNECTING;
	return c;
}

static void conn_start(struct driver *d, uint64_t slot)
{
	const struct client_opts *o = d->o;
	struct conn *c = d->slots[slot];
	int rc;

	if (c != NULL) { /* CS_WAIT: a reconnect */
		d->waiting--;
		d->r->reconnects++;
		c->attempts++;
		c->state = CS_CONNECTING;
	} else {
		c = conn_new(d, slot);
	}

	if (c == NULL) {
		log_error("out of memory for a connection");
		d->r->attempted++;
		result_fail(d->r, PHASE_CONNECT, ENOMEM);
		slot_end(d, slot, 1);
		return;
	}
	d->r->attempted++;
	d->r->by_scenario[c->scen]++;
	d->slots[slot] = c;
	d->live++;
	d->connecting++;
	d->r->open_now = d->live;
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
	event_assign(&c->rev, d->base, c->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_assign(&c->wev, d->base, c->fd, EV_WRITE, conn_write_cb, c);
	evtimer_assign(&c->tev, d->base, conn_timer_cb, c);
	c->assigned = 1;
	rc = connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen);
	if (d->ports != NULL && (rc == 0 || errno == EINPROGRESS)) {
		int saved = errno;
		own_ports_add_fd(d->ports, c->fd); /* the port is chosen by now */
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

/* ---- pacing ---- */

static void driver_refill(struct driver *d, int64_t now)
{
	double cap = d->rate / 100.0 > 1.0 ? d->rate / 100.0 : 1.0; /* a burst of 10 ms */

	d->tokens += (double)(now - d->t_tokens) * d->rate / 1e6;
	if (d->tokens > cap)
		d->tokens = cap;
	d->t_tokens = now;
}

/* Opens connections while slots wait, handshakes in flight stay under --max-connecting
 * and the token bucket allows. A connection that fails at once (socket, bind or connect
 * refused) ends inside conn_start and may put its slot back in the queue: such a slot waits
 * for the next pass, which runs from the loop after it has waited (pump_ev), so a run whose
 * every connect fails neither recurses nor keeps the loop from its timers (--duration,
 * signals). */
static void driver_pump(struct driver *d)
{
	uint64_t budget = d->qlen; /* the slots queued when this pass began */

	if (d->pumping)
		return; /* called from inside a pass (a connection ended): it goes on */
	d->pumping = 1;
	while (budget > 0 && d->qlen > 0 && !d->stopping &&
	       d->connecting < (uint64_t)d->o->max_connecting) {
		uint64_t slot;
		if (d->rate > 0) {
			driver_refill(d, now_us());
			if (d->tokens < 1.0) {
				struct timeval tv =
				    clock_us_to_tv((int64_t)((1.0 - d->tokens) * 1e6 / d->rate) + 1);
				evtimer_add(d->pump_ev, &tv);
				d->pumping = 0;
				return;
			}
			d->tokens -= 1.0;
		}
		slot = d->queue[d->qhead];
		d->qhead = (d->qhead + 1) % d->nslots;
		d->qlen--;
		budget--;
		conn_start(d, slot);
	}
	d->pumping = 0;
	if (budget == 0 && d->qlen > 0 && !d->stopping &&
	    d->connecting < (uint64_t)d->o->max_connecting) {
		/* Re-queued during this pass. A timer of 0, not event_active(): libevent runs
		 * an event activated from a callback in the same pass over the active queue,
		 * so the loop would never wait (nor see its timers and signals) again. */
		static const struct timeval next_pass = {0, 0};
		evtimer_add(d->pump_ev, &next_pass);
	}
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	driver_pump(arg);
}

/* ---- the end of the run ---- */

/* At the end of the run: a connection not yet connected, or connected with nothing
 * sent, is cancelled; the others finish their scenario's ending. */
static void conn_stop(struct conn *c)
{
	if (c->state == CS_WAIT) { /* not reconnected: it was counted when the server closed */
		c->d->slots[c->slot] = NULL;
		conn_free(c);
		return;
	}
	if (c->state >= CS_DYING) {
		conn_dead_end(c, OUTCOME_DONE);
		return;
	}
	if (c->state == CS_CONNECTING ||
	    (c->state == CS_FIRST && c->sent == 0 && c->send_off == 0)) {
		c->d->r->cancelled++;
		c->d->slots[c->slot] = NULL;
		conn_free(c);
		return;
	}
	c->stopping = 1;
	if (c->state == CS_HALF_CLOSED)
		return;
	if (!conn_check_end(c))
		conn_arm(c);
}

static void driver_stop(struct driver *d)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	evtimer_del(d->pump_ev);
	evtimer_del(d->backoff_ev);
	evtimer_del(d->reconnect_ev);
	for (uint64_t i = 0; i < d->nslots; i++) {
		if (d->slots[i] != NULL)
			conn_stop(d->slots[i]);
	}
	driver_maybe_done(d);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	driver_stop(arg);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct driver *d = arg;

	(void)what;
	if (++d->signals > 1) {
		log_warn("second signal %d: exiting at once", (int)sig);
		fault_teardown();
		_exit(1);
	}
	log_info("signal %d: ending the run (finishing open connections; again to exit at once)",
		 (int)sig);
	driver_stop(d);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;

	(void)fd;
	(void)what;
	if (d->tick != NULL)
		d->tick(d->tick_arg);
}

/* ---- setup ---- */

static int driver_events(struct driver *d)
{
	struct timeval second = {1, 0};

	d->pump_ev = evtimer_new(d->base, pump_cb, d);
	d->stop_ev = evtimer_new(d->base, stop_cb, d);
	d->tick_ev = event_new(d->base, -1, EV_PERSIST, tick_cb, d);
	d->sigint_ev = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sigterm_ev = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->backoff_ev = evtimer_new(d->base, backoff_cb, d);
	d->fault_ev = event_new(d->base, -1, 0, fault_flush_cb, d);
	d->reconnect_ev = evtimer_new(d->base, reconnect_cb, d);
	if (!d->pump_ev || !d->stop_ev || !d->tick_ev || !d->sigint_ev || !d->sigterm_ev ||
	    !d->backoff_ev || !d->fault_ev || !d->reconnect_ev)
		return -1;
	if (d->o->duration_ms > 0) {
		struct timeval tv = clock_ms_to_tv(d->o->duration_ms);
		evtimer_add(d->stop_ev, &tv);
	}
	if (d->tick != NULL)
		event_add(d->tick_ev, &second);
	/* A worker of --procs leaves SIGINT (a terminal's ^C to the whole group) to its
	 * parent, which forwards one SIGTERM. */
	if (d->nworkers == 1)
		evsignal_add(d->sigint_ev, NULL);
	evsignal_add(d->sigterm_ev, NULL);
	return 0;
}

static void driver_free(struct driver *d)
{
	struct event *evs[] = {d->pump_ev,    d->stop_ev,    d->tick_ev,  d->sigint_ev,
			       d->sigterm_ev, d->backoff_ev, d->fault_ev, d->reconnect_ev};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (evs[i] != NULL)
			event_free(evs[i]);
	}
	for (uint64_t i = 0; d->slots != NULL && i < d->nslots; i++) {
		if (d->slots[i] != NULL)
			conn_free(d->slots[i]);
	}
	if (d->base != NULL)
		event_base_free(d->base);
	free(d->slots);
	free(d->queue);
	free(d->waitq);
	free(d->wait_until);
	free(d->rq);
	free(d->add_q);
	free(d->del_q);
	free(d->add_spare);
	free(d->del_spare);
	free(d->elems);
	plan_worker_free(&d->pw);
	crashport_free(d->crash_ports);
	free(d);
}

static struct driver *driver_new(const struct driver_params *p, int worker, struct result *r)
{
	const struct client_opts *o = p->o;
	struct driver *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->o = o;
	d->plan = p->plan;
	d->r = r;
	d->worker = worker;
	d->nworkers = p->plan->nworkers;
	d->nslots = plan_slots(p->plan, worker);
	d->rate = p->plan->rate;
	d->slots = calloc(d->nslots, sizeof(*d->slots));
	d->queue = calloc(d->nslots, sizeof(*d->queue));
	d->waitq = calloc(d->nslots, sizeof(*d->waitq));
	d->wait_until = calloc(d->nslots, sizeof(*d->wait_until));
	if (o->reconnect && (d->rq = calloc(d->nslots, sizeof(*d->rq))) == NULL) {
		driver_free(d);
		return NULL;
	}
	if (plan_runs(p->plan, SCEN_VANISH)) {
		d->add_q = calloc(d->nslots, sizeof(*d->add_q));
		d->del_q = calloc(d->nslots, sizeof(*d->del_q));
		d->add_spare = calloc(d->nslots, sizeof(*d->add_spare));
		d->del_spare = calloc(d->nslots, sizeof(*d->del_spare));
		d->elems = calloc(d->nslots, sizeof(*d->elems));
		if (!d->add_q || !d->del_q || !d->add_spare || !d->del_spare || !d->elems) {
			driver_free(d);
			return NULL;
		}
	}
	if (plan_worker_init(&d->pw, p->plan, worker) < 0) {
		driver_free(d);
		return NULL;
	}
	if (plan_runs(p->plan, SCEN_CRASH)) {
		d->crash_ports = crashport_new(o, p->plan, p->crash, worker);
		if (d->crash_ports == NULL) {
			driver_free(d);
			return NULL;
		}
	}
	d->base = event_base_new();
	if (d->slots == NULL || d->queue == NULL || d->waitq == NULL || d->wait_until == NULL ||
	    d->base == NULL) {
		driver_free(d);
		return NULL;
	}
	for (uint64_t i = 0; i < d->nslots; i++)
		slot_enqueue(d, i);
	return d;
}

int driver_run(const struct driver_params *p, int worker, struct result *r)
{
	struct driver *d = driver_new(p, worker, r);
	int rc;

	if (d == NULL) {
		log_error("worker %d: cannot set up its event loop (out of memory)", worker);
		return 1;
	}
	d->ports = p->ports;
	d->tick = p->tick;
	d->tick_arg = p->tick_arg;
	if (driver_events(d) < 0) {
		log_error("worker %d: cannot create its events", worker);
		driver_free(d);
		return 1;
	}
	fault_signals(0); /* the loop handles them now */
	d->t_start = now_us();
	d->t_tokens = d->t_start;
	d->tokens = 1.0;
	bucket_init(&d->reconnect_bucket, p->plan->reconnect_rate, d->t_start);
	if (d->nslots > 0) {
		driver_pump(d);
		/* A loopbreak before the loop runs is forgotten: check first. */
		if (!driver_finished(d))
			event_base_dispatch(d->base);
	}
	r->elapsed_us = now_us() - d->t_start;
	r->done = 1;
	rc = d->fatal;
	fault_signals(1); /* its handlers go with it */
	driver_free(d);
	return rc;
}
