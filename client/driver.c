#include "driver.h"
#include "clock.h"
#include "conn.h"
#include "deadpeer.h"
#include "fault.h"
#include "log.h"
#include "reconnect.h"
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct driver {
	const struct client_opts *o;
	const struct plan *plan;
	struct plan_worker pw; /* this worker's connections, in order */
	struct event_base *base;
	struct result *r;
	int worker, nworkers;
	uint64_t nslots;
	struct conn **slots;
	uint64_t *queue, qhead, qlen; /* slots waiting to open a connection */
	uint64_t *waitq, whead, wlen; /* slots waiting out --backoff */
	int64_t *wait_until;
	/* --reconnect: the slots whose delay is over, waiting for a token of
	 * --reconnect-rate, in order. */
	uint64_t *rq, rhead, rlen;
	struct bucket reconnect_bucket;
	struct event *reconnect_ev;
	/* --rate as a schedule: connection k of this worker is due to open at
	 * t_start + k / rate (its share of the rate); one that opens later because no slot
	 * or no room under --max-connecting was free at its time is a late start. */
	double rate, next_start_us;
	int64_t *queued_at; /* [nslots]: when each queued slot became free */
	uint8_t *pending;   /* [nslots]: queued or waiting out --backoff */
	uint64_t nstarted;  /* --rate-stages: starts made */
	/* --stages: the slots below `active` are wanted now (the worker's share of the
	 * target); a ramp-down stops the connections of the slots above it. */
	uint64_t active;
	struct event *stage_ev;
	int64_t room_at; /* when --max-connecting last made room after it was full */
	int full;	 /* the pump stopped at --max-connecting */
	/* The worker's own CPU time, per second and over the run (saturation). */
	int64_t cpu_start_ns, cpu_last_ns, cpu_last_wall_us;
	int signals;
	int pumping; /* driver_pump is running: a nested call returns at once */
	int64_t t_start;
	struct event *pump_ev, *stop_ev, *tick_ev, *sigint_ev, *sigterm_ev, *backoff_ev, *cpu_ev;
	driver_tick_fn tick;
	void *tick_arg;
	int64_t tick_first_us;
	/* What its connections share (their counts, the result, the run's end), last: it
	 * holds their I/O buffer. */
	struct conn_env env;
};

static void driver_pump(struct driver *d);
static void driver_stop(struct driver *d);

static int64_t now_us(void)
{
	return clock_mono_us();
}

/* ---- slots ---- */

/* Nothing open and nothing more to open. */
static int driver_finished(const struct driver *d)
{
	return d->env.live == 0 && d->env.waiting == 0 &&
	       (d->env.stopping || (d->o->duration_ms == 0 && d->qlen == 0));
}

static void driver_maybe_done(struct driver *d)
{
	if (driver_finished(d))
		event_base_loopbreak(d->base);
}

static void slot_enqueue(struct driver *d, uint64_t slot)
{
	if (d->pending[slot] == 2)
		d->pending[slot] = 1; /* its backoff is over */
	else if (d->pending[slot])
		return; /* queued already (a ramp reactivated it) */
	d->pending[slot] = 1;
	d->queued_at[slot] = now_us();
	d->queue[(d->qhead + d->qlen) % d->nslots] = slot;
	d->qlen++;
}

/* Slots waiting out --backoff, in the order they failed (all wait the same time). */
static void slot_backoff(struct driver *d, uint64_t slot)
{
	uint64_t i = (d->whead + d->wlen) % d->nslots;

	d->pending[slot] = 2;
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

/* A slot's connection ended (conn_env.ended). With --duration it opens another one (after --backoff
 * when it failed, so a refusing server is not hammered in a tight loop). */
static void slot_end(void *owner, uint64_t slot, int failed)
{
	struct driver *d = owner;

	d->slots[slot] = NULL;
	if (d->env.stopping || d->o->duration_ms == 0 || slot >= d->active) {
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

/* The slots whose delay is over open in that order, as --reconnect-rate allows, through
 * the queue of every new connection (--rate and --max-connecting apply too). */
static void reconnect_pump(struct driver *d)
{
	while (d->rlen > 0 && !d->env.stopping) {
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

/* A waiting connection's delay is over (conn_env.reconnect_due). */
static void reconnect_due(void *owner, uint64_t slot)
{
	struct driver *d = owner;

	d->rq[(d->rhead + d->rlen) % d->nslots] = slot;
	if (d->rlen++ == 0) /* else the queue's timer is set */
		reconnect_pump(d);
}

/* Opens the slot's connection: the plan's next one, meant to open at start_us, or the one
 * waiting to reconnect. */
static void slot_open(struct driver *d, uint64_t slot, int64_t start_us)
{
	struct conn *c = d->slots[slot];

	if (c == NULL) {
		struct plan_conn pc;
		plan_next(&d->pw, &pc);
		pc.start_us = start_us;
		c = conn_new(&d->env, slot, &pc);
		if (c == NULL) {
			log_error("out of memory for a connection");
			d->r->attempted++;
			result_fail(d->r, PHASE_CONNECT, ENOMEM);
			slot_end(d, slot, 1);
			return;
		}
		d->slots[slot] = c;
	}
	conn_start(c); /* may end it at once: slot_end */
}

/* ---- pacing ---- */

/* --rate-stages: start k of worker w of P is due when the ramp's integral reaches
 * k P + w starts. 0 when it is not time yet (or never again: the rate ramped to 0). */
static int64_t driver_staged_start(struct driver *d, int64_t ready)
{
	double t_ms = stages_when(
	    d->plan->rate_stages, 0,
	    1000.0 * (double)(d->nstarted * (uint64_t)d->nworkers + (uint64_t)d->worker + 1));
	int64_t due, now = now_us();

	if (t_ms < 0)
		return 0;
	due = d->t_start + (int64_t)ceil(t_ms * 1000);
	if (now < due) {
		struct timeval tv = clock_us_to_tv(due - now);
		evtimer_add(d->pump_ev, &tv);
		return 0;
	}
	d->nstarted++;
	if (ready > due)
		d->r->late_starts++;
	return due;
}

/* The time the queue's first slot is meant to open: with --rate its time on the schedule
 * (counted as a late start when its slot, or room under --max-connecting, came later
 * than that), else when its slot became free. 0 when it is not time yet: the pump's
 * timer is set. A start missed while the client lagged is made late, never dropped. */
static int64_t driver_start_due(struct driver *d, uint64_t slot)
{
	int64_t due, now, ready = d->queued_at[slot] > d->room_at ? d->queued_at[slot] : d->room_at;

	if (d->plan->rate_stages != NULL)
		return driver_staged_start(d, ready);
	if (d->rate <= 0)
		return d->queued_at[slot];
	now = now_us();
	due = (int64_t)ceil(d->next_start_us);
	if (now < due) {
		struct timeval tv = clock_us_to_tv(due - now);
		evtimer_add(d->pump_ev, &tv);
		return 0;
	}
	d->next_start_us += 1e6 / d->rate;
	if (ready > due)
		d->r->late_starts++;
	return due;
}

/* Opens connections while slots wait, handshakes in flight stay under --max-connecting
 * and the --rate schedule allows. A connection that fails at once (socket, bind or connect
 * refused) ends inside slot_open and may put its slot back in the queue: such a slot waits
 * for the next pass, which runs from the loop after it has waited (pump_ev), so a run whose
 * every connect fails neither recurses nor keeps the loop from its timers (--duration,
 * signals). */
static void driver_pump(struct driver *d)
{
	uint64_t budget = d->qlen; /* the slots queued when this pass began */

	if (d->pumping)
		return; /* called from inside a pass (a connection ended): it goes on */
	d->pumping = 1;
	while (budget > 0 && d->qlen > 0 && !d->env.stopping &&
	       d->env.connecting < (uint64_t)d->o->max_connecting) {
		uint64_t slot = d->queue[d->qhead];
		int64_t start;
		if (slot >= d->active) { /* a ramp-down took it out while it waited */
			d->pending[slot] = 0;
			d->qhead = (d->qhead + 1) % d->nslots;
			d->qlen--;
			budget--;
			continue;
		}
		start = driver_start_due(d, slot);
		if (start == 0) {
			d->pumping = 0;
			return;
		}
		d->pending[slot] = 0;
		d->qhead = (d->qhead + 1) % d->nslots;
		d->qlen--;
		budget--;
		slot_open(d, slot, start);
	}
	d->pumping = 0;
	if (d->qlen > 0 && d->env.connecting >= (uint64_t)d->o->max_connecting)
		d->full = 1;
	if (budget == 0 && d->qlen > 0 && !d->env.stopping &&
	    d->env.connecting < (uint64_t)d->o->max_connecting) {
		/* Re-queued during this pass. A timer of 0, not event_active(): libevent runs
		 * an event activated from a callback in the same pass over the active queue,
		 * so the loop would never wait (nor see its timers and signals) again. */
		static const struct timeval next_pass = {0, 0};
		evtimer_add(d->pump_ev, &next_pass);
	}
}

/* A handshake is over (conn_env.handshake_over): room under --max-connecting. */
static void handshake_over(void *owner)
{
	struct driver *d = owner;

	if (d->full) {
		d->full = 0;
		d->room_at = now_us();
	}
	driver_pump(d);
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	driver_pump(arg);
}

/* --stages: the worker's share of the target now. A ramp-up queues the slots that came
 * into it; a ramp-down stops the connections of the highest slots (the last a ramp-up
 * opened): each finishes as at the end of the run (its messages answered, then its
 * scenario's ending), counted in ramped_down and then as completed (cancelled when it
 * was still connecting). */
static void stage_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	uint64_t was = d->active,
		 want = plan_target(d->plan, d->worker, (double)(now_us() - d->t_start) / 1000.0);

	(void)fd;
	(void)what;
	if (d->env.stopping || want == was)
		return;
	d->active = want < d->nslots ? want : d->nslots;
	for (uint64_t i = d->active; i < was; i++) {
		if (d->slots[i] != NULL) {
			d->r->ramped_down++;
			conn_stop(d->slots[i]);
		}
	}
	for (uint64_t i = was; i < d->active; i++) {
		if (d->slots[i] == NULL)
			slot_enqueue(d, i);
	}
	driver_pump(d);
}

static void driver_stop(struct driver *d)
{
	if (d->env.stopping)
		return;
	d->env.stopping = 1;
	evtimer_del(d->pump_ev);
	evtimer_del(d->backoff_ev);
	evtimer_del(d->reconnect_ev);
	for (uint64_t i = 0; i < d->nslots; i++) {
		if (d->slots[i] != NULL)
			conn_stop(d->slots[i]);
	}
	driver_maybe_done(d);
}

/* The run cannot go on (conn_env.stop). */
static void stop_run(void *owner)
{
	driver_stop(owner);
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

static int64_t cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Counts the seconds in which the worker was saturated (RESULT_CPU_SATURATED). */
static void cpu_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	int64_t cpu = cpu_ns(), wall = now_us();

	(void)fd;
	(void)what;
	if ((double)(cpu - d->cpu_last_ns) / 1e3 >=
	    RESULT_CPU_SATURATED * (double)(wall - d->cpu_last_wall_us))
		d->r->cpu_saturated_s++;
	d->cpu_last_ns = cpu;
	d->cpu_last_wall_us = wall;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;

	(void)fd;
	(void)what;
	if (d->tick != NULL) {
		struct timeval tv = clock_us_to_tv(d->tick(d->tick_arg));
		/* A timer counts from the loop's cached time, taken before the tick's own work:
		 * the delay is from now. */
		event_base_update_cache_time(d->base);
		evtimer_add(d->tick_ev, &tv);
	}
}

/* ---- setup ---- */

/* How often a ramp of --stages is followed: a step of a ramp of N connections a second
 * is N / 100 connections. */
#define STAGE_STEP_US 10000

static int driver_events(struct driver *d)
{
	struct timeval second = {1, 0};

	d->pump_ev = evtimer_new(d->base, pump_cb, d);
	d->stop_ev = evtimer_new(d->base, stop_cb, d);
	d->tick_ev = evtimer_new(d->base, tick_cb, d);
	d->sigint_ev = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sigterm_ev = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->backoff_ev = evtimer_new(d->base, backoff_cb, d);
	d->reconnect_ev = evtimer_new(d->base, reconnect_cb, d);
	d->cpu_ev = event_new(d->base, -1, EV_PERSIST, cpu_cb, d);
	d->stage_ev = event_new(d->base, -1, EV_PERSIST, stage_cb, d);
	if (!d->pump_ev || !d->stop_ev || !d->tick_ev || !d->sigint_ev || !d->sigterm_ev ||
	    !d->backoff_ev || !d->reconnect_ev || !d->cpu_ev || !d->stage_ev)
		return -1;
	event_add(d->cpu_ev, &second);
	if (d->plan->stages != NULL) {
		struct timeval step = {0, STAGE_STEP_US};
		event_add(d->stage_ev, &step);
	}
	if (d->o->duration_ms > 0) {
		struct timeval tv = clock_ms_to_tv(d->o->duration_ms);
		evtimer_add(d->stop_ev, &tv);
	}
	if (d->tick != NULL) {
		struct timeval first = clock_us_to_tv(d->tick_first_us);
		evtimer_add(d->tick_ev, &first);
	}
	/* A worker of --procs leaves SIGINT (a terminal's ^C to the whole group) to its
	 * parent, which forwards one SIGTERM. */
	if (d->nworkers == 1)
		evsignal_add(d->sigint_ev, NULL);
	evsignal_add(d->sigterm_ev, NULL);
	return 0;
}

static void driver_free(struct driver *d)
{
	struct event *evs[] = {d->pump_ev,	d->stop_ev,    d->tick_ev,
			       d->sigint_ev,	d->sigterm_ev, d->backoff_ev,
			       d->reconnect_ev, d->cpu_ev,     d->stage_ev};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (evs[i] != NULL)
			event_free(evs[i]);
	}
	for (uint64_t i = 0; d->slots != NULL && i < d->nslots; i++) {
		if (d->slots[i] != NULL)
			conn_free(d->slots[i]);
	}
	deadpeer_batch_free(d->env.vanish);
	if (d->base != NULL)
		event_base_free(d->base);
	free(d->slots);
	free(d->queue);
	free(d->waitq);
	free(d->wait_until);
	free(d->queued_at);
	free(d->pending);
	free(d->rq);
	plan_worker_free(&d->pw);
	free(d->env.scratch);
	crashport_free(d->env.crash_ports);
	free(d);
}

/* The connections' environment: what they share, and this driver's callbacks. */
static int driver_env(struct driver *d, const struct driver_params *p, int worker)
{
	struct conn_env *e = &d->env;

	e->o = p->o;
	e->plan = p->plan;
	e->base = d->base;
	e->r = d->r;
	e->ports = p->ports;
	e->ended = slot_end;
	e->handshake_over = handshake_over;
	e->reconnect_due = reconnect_due;
	e->stop = stop_run;
	e->owner = d;
	if (plan_runs(p->plan, SCEN_VANISH) &&
	    (e->vanish = deadpeer_batch_new(d->base, d->nslots, conn_vanish_done, e)) == NULL)
		return -1;
	if (plan_runs(p->plan, SCEN_CRASH) &&
	    (e->crash_ports = crashport_new(p->o, p->plan, p->crash, worker)) == NULL)
		return -1;
	return 0;
}

/* A schedule (--message-rate, --rate) needs a precise timer: libevent's default reads
 * CLOCK_MONOTONIC_COARSE, which is 4 ms granular here (one jiffy at HZ=250), coarser than
 * the lateness it must measure. EVENT_BASE_FLAG_PRECISE_TIMER makes it use
 * CLOCK_MONOTONIC. */
static struct event_base *driver_base(const struct plan *p)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	if ((p->msg_rate > 0 || p->rate > 0) &&
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) < 0)
		log_warn("libevent: no precise timer: the schedule's lateness is coarser");
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static struct driver *driver_new(const struct driver_params *p, int worker, struct result *r)
{
	struct driver *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->o = p->o;
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
	d->queued_at = calloc(d->nslots, sizeof(*d->queued_at));
	d->pending = calloc(d->nslots, sizeof(*d->pending));
	d->base = driver_base(p->plan);
	if (d->slots == NULL || d->queue == NULL || d->waitq == NULL || d->wait_until == NULL ||
	    d->queued_at == NULL || d->pending == NULL || d->base == NULL ||
	    (p->o->warmup_ms > 0 && (d->env.scratch = calloc(1, sizeof(struct result))) == NULL) ||
	    (p->o->reconnect && (d->rq = calloc(d->nslots, sizeof(*d->rq))) == NULL) ||
	    plan_worker_init(&d->pw, p->plan, worker) < 0 || driver_env(d, p, worker) < 0) {
		driver_free(d);
		return NULL;
	}
	d->active = plan_target(p->plan, worker, 0);
	for (uint64_t i = 0; i < d->active; i++)
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
	d->tick = p->tick;
	d->tick_arg = p->tick_arg;
	d->tick_first_us = p->tick_first_us;
	if (driver_events(d) < 0) {
		log_error("worker %d: cannot create its events", worker);
		driver_free(d);
		return 1;
	}
	fault_signals(0); /* the loop handles them now */
	d->t_start = now_us();
	d->next_start_us = (double)d->t_start;
	d->env.warm_until = d->t_start + d->o->warmup_ms * 1000;
	d->cpu_start_ns = d->cpu_last_ns = cpu_ns();
	d->cpu_last_wall_us = d->t_start;
	bucket_init(&d->reconnect_bucket, p->plan->reconnect_rate, d->t_start);
	if (d->nslots > 0) {
		driver_pump(d);
		/* A loopbreak before the loop runs is forgotten: check first. */
		if (!driver_finished(d))
			event_base_dispatch(d->base);
	}
	/* The rates are of the run after its warm-up. */
	r->elapsed_us = now_us() - (d->o->warmup_ms > 0 ? d->env.warm_until : d->t_start);
	r->cpu_us = (uint64_t)(cpu_ns() - d->cpu_start_ns) / 1000;
	r->done = 1;
	rc = d->env.fatal;
	fault_signals(1); /* its handlers go with it */
	driver_free(d);
	return rc;
}
