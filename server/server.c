/* server: the listener, signals, the connection table and the graceful drain of one
 * process (workers.c runs several of these on one port).
 *
 * It is the one orchestrator of its parts, and data flows one way: the server drives the
 * census tick (its watchdog measures, then the server publishes the figures: into its
 * counters, its worker slot and its metrics endpoint), and answers its watchdog's
 * questions (which fds are its own, which connections are open). The watchdog and the
 * metrics endpoint know neither the server nor each other; only conn.c calls back into
 * the server (server_conn_closed). */
#include "server.h"
#include "clock.h"
#include "conn.h"
#include "lifecycle.h"
#include "listener.h"
#include "log.h"
#include "looplag.h"
#include "portfile.h"
#include "metrics.h"
#include "sdnotify.h"
#include "slots.h"
#include "sock.h"
#include "tcpinfo.h"
#include "watchdog.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Connections accepted per wakeup of the listener, so a connect storm cannot starve the
 * established connections. */
#define ACCEPT_BATCH 64
/* While the drain progresses it tells systemd (EXTEND_TIMEOUT_USEC) every this often that
 * the stop may take until shutdown_timeout plus two of these: a protocol detail, not a
 * knob (the unit's TimeoutStopSec stays above shutdown_timeout anyway). */
#define DRAIN_TICK_MS 1000

static void server_on_accept(evutil_socket_t fd, short what, void *arg);
static void server_on_accept_resume(evutil_socket_t fd, short what, void *arg);
static void server_on_tick(evutil_socket_t fd, short what, void *arg);

/* ---- start ------------------------------------------------------------------------- */

/* Seeded per process (each worker after its fork), from getrandom; without it from the
 * clock and the pid, which is enough for spreading closes. */
static void server_seed(struct server *srv)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
	srv->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"):
 * the top 53 bits as a double in [0, 1). */
double server_random(struct server *srv)
{
	uint64_t x = srv->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	srv->rng = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

/* libevent's own warnings go through log.c like every other line (only log.c writes to
 * stderr, and its lines are rate limited). */
static void server_on_libevent_log(int severity, const char *msg)
{
	enum log_level level = severity >= EVENT_LOG_ERR    ? LOG_LVL_ERROR
			       : severity >= EVENT_LOG_WARN ? LOG_LVL_WARN
			       : severity >= EVENT_LOG_MSG  ? LOG_LVL_INFO
							    : LOG_LVL_DEBUG;

	log_msg(level, "libevent: %s", msg);
}

static struct event_base *server_new_base(void)
{
	struct event_config *ec;
	struct event_base *base;

	event_set_log_callback(server_on_libevent_log);
	ec = event_config_new();
	if (ec == NULL)
		return NULL;
	/* EV_CLOSED (EPOLLRDHUP) is only delivered by backends with this feature. Only epoll:
	 * libevent's poll backend has the feature too, and would be taken silently when
	 * epoll_create1() fails, but conn.c relies on how the epoll backend reports an RST
	 * (libevent issue #1038, see conn.c): better no server than another one. */
	event_config_require_features(ec, EV_FEATURE_EARLY_CLOSE);
	event_config_avoid_method(ec, "poll");
	event_config_avoid_method(ec, "select");
	/* No EVENT_BASE_FLAG_PRECISE_TIMER: with it the epoll backend arms a timerfd with
	 * timerfd_settime() on every loop pass (perf, under the bench's echo load: 1.5 % of
	 * the server's CPU). libevent's default clock is then CLOCK_MONOTONIC_COARSE, which can
	 * ring a timer early by as much as it lags CLOCK_MONOTONIC (up to 7.3 ms measured
	 * on a 4 ms-tick kernel): the connection deadlines check CLOCK_MONOTONIC themselves
	 * (conn_deadline_due), and the server's own timers (accept pause, shutdown_timeout,
	 * census) are not harmed by a few ms. */
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

const struct timeval *server_deadline_tv(struct event_base *base, int64_t ms,
					 struct timeval *fallback)
{
	struct timeval tv = clock_ms_to_tv(ms);
	const struct timeval *common;

	if (ms <= 0)
		return NULL;
	common = event_base_init_common_timeout(base, &tv);
	if (common != NULL)
		return common;
	log_warn("no libevent common timeout left for %lldms (at most 256 per event loop): "
		 "that deadline uses a plain timer",
		 (long long)ms);
	*fallback = tv;
	return fallback;
}

/* The listener: the one passed in params (the workers' parent's, or one adopted at start),
 * with this config's options and backlog; or a new one. */
static int server_open_listener(struct server *srv, int *exit_code)
{
	int fd = srv->params.listen_fd;

	if (fd < 0) {
		srv->lfd = listener_open(srv->cfg, 0, exit_code);
		return srv->lfd < 0 ? -1 : 0;
	}
	srv->params.listen_fd = -1; /* the server's own from now on */
	srv->lfd = fd;
	if (listener_apply(srv->cfg, fd) < 0) {
		log_error("listen %s: socket options, backlog: %s", srv->cfg->listen,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg);

static int server_add_signals(struct server *srv)
{
	const int sigs[4] = {SIGTERM, SIGINT, SIGUSR1, srv->params.parent_death_signal};

	for (int i = 0; i < 4; i++) {
		if (sigs[i] == 0) /* no parent-death signal: not a worker */
			continue;
		srv->ev_signals[i] = evsignal_new(srv->base, sigs[i], server_on_signal, srv);
		if (srv->ev_signals[i] == NULL || evsignal_add(srv->ev_signals[i], NULL) < 0)
			return -1;
	}
	return 0;
}

static int server_setup_events(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;

	srv->hb_tv = server_deadline_tv(srv->base, cfg->heartbeat_timeout, &srv->hb_plain);
	srv->fin_tv = server_deadline_tv(srv->base, cfg->fin_timeout, &srv->fin_plain);
	srv->ev_accept =
	    event_new(srv->base, srv->lfd, EV_READ | EV_PERSIST, server_on_accept, srv);
	srv->ev_accept_resume = evtimer_new(srv->base, server_on_accept_resume, srv);
	if (srv->ev_accept == NULL || srv->ev_accept_resume == NULL ||
	    event_add(srv->ev_accept, NULL) < 0)
		return -1;
	srv->lag = looplag_start(srv->base, &srv->stats); /* runs without it */
	return server_add_signals(srv);
}

/* ---- the watchdog's questions, the census tick -------------------------------------- */

/* The fds the server holds for itself that open and close while it runs. */
static void server_mark_own(void *arg, unsigned char *mark, size_t n)
{
	const struct server *srv = arg;

	if (srv->lfd >= 0 && (size_t)srv->lfd < n)
		mark[srv->lfd] = 1;
	if (srv->reserve_fd >= 0 && (size_t)srv->reserve_fd < n)
		mark[srv->reserve_fd] = 1;
	if (srv->upgrade.rfd >= 0 && (size_t)srv->upgrade.rfd < n) /* an upgrade's ready pipe */
		mark[srv->upgrade.rfd] = 1;
	metrics_mark_fds(srv->metrics, mark, n);
}

static void server_each_conn(void *arg, watchdog_conn_fn *fn, void *fnarg)
{
	const struct server *srv = arg;
	const struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, link)
	{
		struct watchdog_conn wc = {
		    .fd = c->fd,
		    .eof_ignored = (c->flags & CONN_EOF_IGNORED) != 0,
		    .peer_fin = (c->flags & CONN_PEER_FIN) != 0,
		    .fin_us = c->fin_us,
		    .out_len = conn_out_len(c),
		};
		fn(fnarg, &wc);
	}
}

static size_t server_count_conns(void *arg)
{
	const struct server *srv = arg;

	return (size_t)srv->stats.open; /* one per connection in srv->conns, each with its fd */
}

/* With workers: this worker's connection counts into its slot at once, so `open` is
 * exact there should it die (a few words; nothing per message). */
static void server_count(const struct server *srv)
{
	slots_count(srv->params.slots, srv->params.worker, &srv->stats);
}

/* What the watchdog measured goes to the counters line, the worker's slot (for worker 0's
 * /metrics and the parent's total) and the metrics endpoint. */
static void server_publish(struct server *srv)
{
	const struct watchdog_fds *fds = watchdog_fds(srv->watchdog);
	const struct watchdog_close_wait *cw = watchdog_close_wait(srv->watchdog);

	srv->stats.log_dropped = log_dropped_lines(); /* this process's, for the sum */
	srv->stats.censuses = watchdog_censuses(srv->watchdog);
	srv->stats.fd_unaccounted = fds != NULL && fds->valid ? (int64_t)fds->unaccounted : -1;
	slots_publish(srv->params.slots, srv->params.worker, &srv->stats, fds, cw);
	metrics_publish(srv->metrics, fds, cw, watchdog_census(srv->watchdog));
}

/* Every census_interval: measure, then publish. Publishing does not depend on the
 * census: a worker whose census socket cannot open still publishes its figures. */
/* Under systemd (NOTIFY_SOCKET), the process that reports (alone, or worker 0 with the
 * sum of every worker) says how many connections are open; while this process hands over
 * to a new generation, it asks for more stop time tick by tick (EXTEND_TIMEOUT_USEC), as
 * the drain tick does during the drain, so a stop meanwhile is not cut by TimeoutStopSec
 * while handover_timeout and shutdown_timeout still bound it. */
static void server_notify(struct server *srv)
{
	struct stats total;
	struct watchdog_fds fds = {0};
	struct watchdog_close_wait cw = {0};
	int unread;

	if (!sdnotify_enabled())
		return;
	if (srv->handing_over && !srv->draining)
		sdnotify_extend_timeout((uint64_t)(srv->cfg->census_interval * 2 + 5000) * 1000);
	if (srv->params.slots != NULL && srv->params.worker != 0)
		return;
	total = srv->stats;
	if (srv->params.slots != NULL)
		slots_sum(srv->params.slots, srv->params.worker, &total, &fds, &cw, &unread);
	sdnotify_sendf("STATUS=%llu connections open, %llu accepted",
		       (unsigned long long)total.open, (unsigned long long)total.accepted);
}

static void server_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	int64_t start = clock_mono_us();

	(void)fd;
	(void)what;
	watchdog_measure(srv->watchdog);
	server_publish(srv);
	server_notify(srv);
	looplag_note(srv->lag, "census tick", start);
}

/* The metrics endpoint, then the watchdog (it notes the fds open at its start as the
 * server's own, so everything the server holds for good must exist by then), then the
 * tick, run once now so the figures are there from the start. The server runs without
 * the watchdog or the tick (logged); not without an endpoint it was asked for. */
static int server_start_parts(struct server *srv, int *exit_code)
{
	const struct metrics_env env = {srv->base, srv->cfg, &srv->stats, srv->lag};
	struct watchdog_owner owner = {
	    .cfg = srv->cfg,
	    .port = sock_local_port(srv->lfd),
	    .shared_port = srv->params.reuseport,
	    .board = srv->params.cwboard,
	    .census_taker = srv->params.worker == 0,
	    .arg = srv,
	    .mark_own = server_mark_own,
	    .each_conn = server_each_conn,
	    .count_conns = server_count_conns,
	};
	struct timeval tv = clock_ms_to_tv(srv->cfg->census_interval);

	srv->stats.fd_unaccounted = -1;
	if (metrics_start(&srv->metrics, &env, &srv->params, exit_code) < 0)
		return -1;
	owner.full = srv->metrics != NULL;
	srv->watchdog = watchdog_start(&owner);
	srv->ev_tick = event_new(srv->base, -1, EV_PERSIST, server_on_tick, srv);
	if (srv->ev_tick == NULL || event_add(srv->ev_tick, &tv) < 0)
		log_error("cannot register the census timer: no census, no fd accounting");
	server_on_tick(-1, 0, srv);
	return 0;
}

int server_init(struct server *srv, const struct server_config *cfg,
		const struct server_params *params, int *exit_code)
{
	const char *port_file = params->port_file;

	memset(srv, 0, sizeof(*srv));
	srv->cfg_own = *cfg;
	srv->cfg = &srv->cfg_own; /* a reload changes it in place (lifecycle.c) */
	cfg = srv->cfg;
	srv->upgrade.rfd = -1;
	srv->stats.generation = params->generation;
	srv->stats.start_time_s = params->start_time_s;
	srv->stats.reload_ok = 1;
	srv->lfd = -1;
	srv->reserve_fd = -1;
	srv->params = *params;
	TAILQ_INIT(&srv->conns);
	server_seed(srv);
	hist_init(&srv->stats.fin_to_close_us);
	hist_init(&srv->stats.conn_duration_us);
	*exit_code = 1;
	if (server_open_listener(srv, exit_code) < 0)
		return -1;
	srv->scratch_len = (size_t)cfg->read_size;
	srv->scratch = malloc(srv->scratch_len);
	srv->base = server_new_base();
	if (srv->scratch == NULL || srv->base == NULL) {
		log_error("cannot start the event loop (libevent's epoll backend with "
			  "EV_FEATURE_EARLY_CLOSE): %s",
			  srv->scratch == NULL ? "out of memory" : strerror(errno));
		return -1;
	}
	if (server_setup_events(srv) < 0) {
		log_error("cannot register the listener and signal events");
		return -1;
	}
	/* The reserve fd is given up on EMFILE so one pending connection can be accepted and
	 * closed (nginx and libevent's evconnlistener leave the queue to hang instead). */
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (srv->reserve_fd < 0) {
		log_error("open /dev/null (the reserve fd for EMFILE): %s", strerror(errno));
		return -1;
	}
	if (server_start_parts(srv, exit_code) < 0)
		return -1;
	if (lifecycle_start(srv) < 0) {
		log_error("cannot register the reload and upgrade events");
		return -1;
	}
	log_info("listening on %s port %d, mode %s", cfg->listen, sock_local_port(srv->lfd),
		 cfg->mode == MODE_LEAKY ? "leaky" : "correct");
	/* last, so that whoever waits for the port file finds the startup lines on stderr */
	if (port_file != NULL && portfile_write(port_file, sock_local_port(srv->lfd)) < 0) {
		log_error("port file %s: %s", port_file, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- accept ------------------------------------------------------------------------ */

/* Sheds what waits in the accept queue at the fd limit: give up the reserve fd, accept
 * and close, take the reserve back. A shed client learns at once rather than hanging in
 * the queue until its connect times out: one that has sent nothing gets a FIN (EOF); one
 * whose data already sits in the accepted socket's receive queue gets an RST (Linux
 * resets on close() with unread data). Returns the number shed; *empty is set when the
 * queue turned out to be empty (EAGAIN) before anything was shed. */
static int server_shed(struct server *srv, int *empty)
{
	int shed = 0;

	*empty = 0;
	for (int i = 0; i < ACCEPT_BATCH && srv->reserve_fd >= 0; i++) {
		int fd, err;

		close(srv->reserve_fd);
		fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
		err = errno;
		if (fd >= 0) {
			close(fd);
			shed++;
		}
		srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (srv->reserve_fd < 0)
			log_warn(
			    "reopening the reserve fd: %s; EMFILE now only pauses the listener",
			    strerror(errno));
		if (fd < 0) {
			*empty = shed == 0 && (err == EAGAIN || err == EWOULDBLOCK);
			break;
		}
	}
	srv->stats.shed += (uint64_t)shed;
	return shed;
}

/* Out of fds (EMFILE/ENFILE on accept). Linux's accept4() fails so at the fd limit even
 * when the queue is empty (the fd is allocated first): with nobody waiting (the shed
 * found the queue empty, e.g. the accept batch went on after taking the last fd) nothing
 * is counted and the listener stays armed, since an empty queue is not readable. With
 * someone waiting, or no reserve fd to find out, the listener pauses for accept_pause
 * instead of spinning on a listener that stays readable, and the pause is counted. The
 * resume timer is armed before the listener is unwatched: a pause that could not end
 * would stop accepting for good, so without its timer the listener stays armed (its
 * readiness retries, and the reserve fd sheds). */
static void server_on_emfile(struct server *srv, int err)
{
	struct timeval tv = clock_ms_to_tv(srv->cfg->accept_pause);
	int empty, shed = server_shed(srv, &empty);

	if (empty)
		return;
	if (evtimer_add(srv->ev_accept_resume, &tv) < 0) {
		log_warn("accept: %s: shed %d queued connections; the pause timer cannot be "
			 "armed (%s): the listener is not paused",
			 strerror(err), shed, strerror(errno));
		return;
	}
	srv->stats.emfile_pauses++;
	log_warn("accept: %s: shed %d queued connections, pausing the listener for %lldms",
		 strerror(err), shed, (long long)srv->cfg->accept_pause);
	event_del(srv->ev_accept);
}

/* Above max_connections: accepted and closed at once, counted as overload. */
static void server_overload(struct server *srv, int fd)
{
	srv->stats.accepted++;
	srv->stats.closed[CLOSE_OVERLOAD]++;
	close(fd);
	log_warn("max_connections (%lld) reached: connection closed (overload)",
		 (long long)srv->cfg->max_connections);
}

/* Accepts up to `batch` connections. Returns 0 when the queue is empty, 1 when more may
 * wait, -1 on EMFILE (listener paused). */
static int server_accept_some(struct server *srv, int batch)
{
	for (int i = 0; i < batch; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd =
		    accept4(srv->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (sock_accept_retry(errno))
				continue;
			if (sock_accept_exhausted(errno)) {
				server_on_emfile(srv, errno);
				return -1;
			}
			log_warn("accept: %s", strerror(errno));
			return 0;
		}
		if (srv->stats.open >= (uint64_t)srv->cfg->max_connections) {
			server_overload(srv, fd);
		} else {
			srv->stats.accepted++;
			conn_accept(srv, fd, (struct sockaddr *)&ss, len);
		}
		server_count(srv);
	}
	return 1;
}

static void server_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->lfd < 0)
		return;
	server_accept_some(srv, ACCEPT_BATCH);
}

/* The EMFILE pause is over: watch the listener again, and let its readiness call accept.
 * Not accept now: at the fd limit Linux's accept4() fails with EMFILE even when the queue
 * is empty, so an idle server at the limit would count a pause, warn and cycle the reserve
 * fd every accept_pause; this way a pause is counted only when a client was waiting. */
static void server_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->lfd < 0 || event_pending(srv->ev_accept, EV_READ, NULL))
		return;
	if (event_add(srv->ev_accept, NULL) < 0) {
		struct timeval tv = clock_ms_to_tv(srv->cfg->accept_pause);

		log_warn("re-arming the listener failed: trying again in %lldms",
			 (long long)srv->cfg->accept_pause);
		if (evtimer_add(srv->ev_accept_resume, &tv) < 0)
			log_error("re-arming the listener and its retry timer failed (%s): no "
				  "new connection is accepted",
				  strerror(errno));
	}
}

/* ---- drain ------------------------------------------------------------------------- */

/* Also on a failed start: the listener's fd may be open while its events do not exist
 * yet (listen() or the event base failed). */
static void server_close_listener(struct server *srv)
{
	if (srv->lfd < 0)
		return;
	if (srv->ev_accept != NULL)
		event_del(srv->ev_accept);
	if (srv->ev_accept_resume != NULL)
		evtimer_del(srv->ev_accept_resume);
	close(srv->lfd);
	srv->lfd = -1;
}

static void server_on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	log_warn("shutdown_timeout: resetting %llu connections still open",
		 (unsigned long long)srv->stats.open);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_abort(c, CLOSE_SHUTDOWN);
}

/* How many connections the drain accepts before it closes the listener: those queued at
 * the signal. Accepting until the queue is empty instead never ends while clients complete
 * connections as fast as they are accepted. Without the queue's length (TCP_INFO failed)
 * the most it can hold: the kernel queues up to backlog + 1 (sk_acceptq_is_full is >),
 * with backlog capped by somaxconn, so the configured one bounds it. */
static int server_drain_budget(struct server *srv)
{
	uint32_t queued;

	if (tcpinfo_accept_queue(srv->lfd, &queued) == 0)
		return queued > INT_MAX ? INT_MAX : (int)queued;
	log_warn("drain: TCP_INFO on the listener: %s; accepting at most backlog + 1 = %lld",
		 strerror(errno), (long long)srv->cfg->backlog + 1);
	return (int)srv->cfg->backlog + 1;
}

/* drain_spread: connection i of N, in random order, gets its turn at (i + U(0,1)) x
 * drain_spread / N, one in each N-th of the window, so the FINs (and the reconnects they
 * cause) come at a flat N / drain_spread a second. Each turn is its connection's own heap
 * timer (conn_drain_at). -1 when the order could not be allocated (nothing scheduled). */
static int server_drain_spread(struct server *srv)
{
	size_t n = (size_t)srv->stats.open, i = 0;
	struct conn **order = malloc((n ? n : 1) * sizeof(*order));
	double spread_us = (double)srv->cfg->drain_spread * 1000.0;
	int64_t now = clock_mono_us();
	struct conn *c;

	if (order == NULL)
		return -1;
	TAILQ_FOREACH(c, &srv->conns, link)
	{
		if (i < n)
			order[i++] = c;
	}
	n = i;
	for (i = n; i > 1; i--) { /* Fisher-Yates */
		size_t j = (size_t)(server_random(srv) * (double)i);

		c = order[i - 1];
		order[i - 1] = order[j];
		order[j] = c;
	}
	for (i = 0; i < n; i++) /* a failure closes that one connection only */
		conn_drain_at(order[i], now + (int64_t)(((double)i + server_random(srv)) *
							spread_us / (double)n));
	free(order);
	return 0;
}

/* Every connection's drain begins: at once, or spread over drain_spread. */
static void server_drain_conns(struct server *srv)
{
	struct conn *c, *next;

	if (srv->cfg->drain_spread > 0 && server_drain_spread(srv) == 0)
		return;
	if (srv->cfg->drain_spread > 0)
		log_warn("drain_spread: out of memory for the order: every connection drains now");
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_drain(c);
	}
}

/* Each tick with connections still open tells systemd the stop goes on (without
 * NOTIFY_SOCKET it does nothing): until shutdown_timeout, plus two ticks. */
static void server_on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = clock_ms_to_tv(DRAIN_TICK_MS);
	int64_t left_us = srv->drain_deadline_us - clock_mono_us();

	(void)fd;
	(void)what;
	if (left_us < 0)
		left_us = 0;
	if (sdnotify_extend_timeout((uint64_t)left_us + 2 * DRAIN_TICK_MS * 1000ULL) < 0)
		log_debug("sd_notify EXTEND_TIMEOUT_USEC: %s", strerror(errno));
	log_debug("drain: %llu connections open, %llu waiting for their turn",
		  (unsigned long long)srv->stats.open, (unsigned long long)srv->stats.drain_left);
	if (evtimer_add(srv->ev_drain_tick, &tv) < 0)
		log_debug("drain tick: %s", strerror(errno)); /* systemd's own timeout holds */
}

/* SIGTERM/SIGINT: the connections in the accept queue at the signal are accepted (closing
 * the listener resets what it still holds), then the listener closes and every connection
 * drains (drain_spread: at its turn). One that completes after the signal may be reset
 * with the listener. */
void server_drain(struct server *srv)
{
	struct timeval tv = clock_ms_to_tv(srv->cfg->shutdown_timeout);

	srv->draining = 1;
	srv->drain_deadline_us = clock_mono_us() + srv->cfg->shutdown_timeout * 1000;
	sdnotify_stopping();
	if (srv->lfd >= 0 && !srv->handing_over) {
		int budget = server_drain_budget(srv);

		log_debug("drain: %d connections in the accept queue", budget);
		if (budget > 0)
			server_accept_some(srv, budget);
	}
	server_close_listener(srv);
	log_info("draining %llu connections (shutdown_timeout %lldms, drain_spread %lldms)",
		 (unsigned long long)srv->stats.open, (long long)srv->cfg->shutdown_timeout,
		 (long long)srv->cfg->drain_spread);
	server_drain_conns(srv);
	srv->ev_shutdown = evtimer_new(srv->base, server_on_shutdown_timeout, srv);
	if (srv->ev_shutdown == NULL || evtimer_add(srv->ev_shutdown, &tv) < 0)
		server_on_shutdown_timeout(-1, 0, srv);
	srv->ev_drain_tick = evtimer_new(srv->base, server_on_drain_tick, srv);
	if (srv->ev_drain_tick != NULL)
		server_on_drain_tick(-1, 0, srv);
	server_conn_closed(srv);
}

void server_conn_closed(struct server *srv)
{
	server_count(srv);
	if ((srv->draining || srv->handing_over) && srv->stats.open == 0)
		event_base_loopbreak(srv->base);
}

/* A worker's supervisor died. The kernel sends the parent-death signal each time it
 * reparents the worker (kernel/exit.c, forget_original_parent()), and a supervisor with
 * more than one thread (log.c's writer) dies thread by thread: when the thread that forked
 * the worker goes first, the worker is reparented to the surviving thread, then to init,
 * and is signalled twice. The second copy is the same death, not an operator's second
 * signal: it must not end the drain the first one started. */
static void server_on_parent_death(struct server *srv)
{
	if (srv->draining) {
		log_debug("the supervisor's death signalled again (once per reparenting): the "
			  "drain goes on");
		return;
	}
	log_info("the supervisor died: graceful drain");
	server_drain(srv);
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == srv->params.parent_death_signal) {
		server_on_parent_death(srv);
		return;
	}
	if (sig == SIGUSR1) {
		watchdog_refresh_fds(srv->watchdog);
		server_publish(srv);
		stats_log(&srv->stats);
		return;
	}
	if (srv->draining) {
		log_warn("second %s: exiting now", strsignal((int)sig));
		stats_log(&srv->stats);
		log_finish(LOG_FINISH_MS); /* at most that long, for a stalled stderr */
		_exit(1);
	}
	log_info("%s: graceful drain", strsignal((int)sig));
	server_drain(srv);
}

void server_config_changed(struct server *srv)
{
	struct timeval tv = clock_ms_to_tv(srv->cfg->census_interval);

	srv->hb_tv = server_deadline_tv(srv->base, srv->cfg->heartbeat_timeout, &srv->hb_plain);
	srv->fin_tv = server_deadline_tv(srv->base, srv->cfg->fin_timeout, &srv->fin_plain);
	/* census_interval: event_add on a pending persistent timer re-arms it with the new
	 * period from now. */
	if (srv->ev_tick != NULL && event_add(srv->ev_tick, &tv) < 0)
		log_warn("reload: census_interval: the census timer could not be re-armed");
}

/* ---- run --------------------------------------------------------------------------- */

int server_run(struct server *srv)
{
	if (event_base_dispatch(srv->base) < 0) {
		log_error("event loop failed");
		return 1;
	}
	watchdog_refresh_fds(srv->watchdog);
	server_publish(srv); /* with workers: the last bytes and closes, for the parent's total */
	stats_log(&srv->stats);
	return 0;
}

void server_free(struct server *srv)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_abort(c, CLOSE_SHUTDOWN);
	server_close_listener(srv);
	for (int i = 0; i < 4; i++)
		if (srv->ev_signals[i] != NULL)
			event_free(srv->ev_signals[i]);
	if (srv->ev_accept != NULL)
		event_free(srv->ev_accept);
	if (srv->ev_accept_resume != NULL)
		event_free(srv->ev_accept_resume);
	if (srv->ev_shutdown != NULL)
		event_free(srv->ev_shutdown);
	if (srv->ev_drain_tick != NULL)
		event_free(srv->ev_drain_tick);
	lifecycle_stop(srv);
	if (srv->ev_tick != NULL)
		event_free(srv->ev_tick);
	watchdog_stop(srv->watchdog);
	srv->watchdog = NULL;
	metrics_stop(srv->metrics);
	srv->metrics = NULL;
	looplag_stop(srv->lag);
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	free(srv->scratch);
}
