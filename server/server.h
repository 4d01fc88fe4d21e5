/* server: one process's listener, signals, connection table and graceful drain. */
#ifndef TEARDOWN_SERVER_SERVER_H
#define TEARDOWN_SERVER_SERVER_H

#include "config.h"
#include "params.h"
#include "stats.h"
#include "upgrade.h"

#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

struct event_base;
struct event;
struct conn;
struct metrics;
struct watchdog;

TAILQ_HEAD(conn_list, conn);

struct server {
	const struct server_config *cfg;
	struct event_base *base;
	int lfd;	/* listening socket, -1 once closed */
	int reserve_fd; /* spare fd given up on EMFILE to accept-and-close */
	struct event *ev_accept;
	struct event *ev_accept_resume; /* ends an EMFILE pause */
	struct event *ev_shutdown;	/* shutdown_timeout during the drain */
	struct event *ev_tick;		/* census_interval: measure, then publish */
	struct event *ev_signals[4];	/* SIGTERM, SIGINT, SIGUSR1, parent_death_signal */
	int draining;
	struct conn_list conns; /* stats.open of them */
	/* libevent common timeouts for the heartbeat and FIN deadlines' first alarm: one
	 * queue per duration, O(1) to add (event_base_init_common_timeout). The write
	 * deadline's alarm rings every quarter of write_timeout instead (conn.c). */
	const struct timeval *hb_tv, *fin_tv;
	char *scratch; /* read buffer shared by all connections (one thread) */
	size_t scratch_len;
	struct server_params params; /* as given to server_init */
	struct stats stats;
	struct metrics *metrics;   /* the /metrics endpoint, NULL when this process has none */
	struct watchdog *watchdog; /* census, CLOSE_WAIT watchdog, fd accounting */
	struct looplag *lag;	   /* the event loop's lateness; NULL when not measured */
	/* hb_tv, fin_tv when no common timeout was left (server_deadline_tv). */
	struct timeval hb_plain, fin_plain;
	uint64_t rng;		     /* server_random's state (xorshift64*), seeded per process */
	struct event *ev_drain_tick; /* sdnotify EXTEND_TIMEOUT_USEC while the drain runs */
	int64_t drain_deadline_us;   /* monotonic time of shutdown_timeout's reset */
	/* Reload and upgrade (lifecycle.c). cfg points at cfg_own: a reload changes it in place. */
	struct server_config cfg_own;
	struct event *ev_life[3];     /* alone: SIGHUP, SIGUSR2, SIGCHLD; a worker: its control */
	struct event *ev_upgrade;     /* the new generation's ready pipe */
	struct event *ev_upgrade_due; /* upgrade_timeout */
	struct event *ev_handover;    /* handover_timeout, then the drain */
	struct upgrade upgrade;	      /* the new generation under way, or handed over to */
	int64_t upgrade_start_us;
	int handing_over; /* a new generation serves the listeners; this one ends its own */
};

/* Resolves, binds and listens; writes the port file. Returns 0, or -1 after logging
 * (*exit_code set: 2 for a config problem such as a port in use, 1 otherwise). */
int server_init(struct server *srv, const struct server_config *cfg,
		const struct server_params *params, int *exit_code);
/* Runs until drained. Returns the process exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);

/* The timeval that arms a deadline of ms milliseconds, NULL when ms <= 0 (off). Normally
 * libevent's common timeout for that duration: one queue per distinct duration, O(1) to
 * add; event_base_init_common_timeout returns the one the base already has for a
 * duration, so each value is reused. libevent allows at most 256 per base
 * (MAX_COMMON_TIMEOUTS): past that, or without memory, *fallback is set to the plain
 * duration and returned (a heap timer, O(log n) to add), so a deadline is never turned off
 * for want of a queue. */
const struct timeval *server_deadline_tv(struct event_base *base, int64_t ms,
					 struct timeval *fallback);

/* A uniform random number in [0, 1): the drain's order and turns, the connections' ages.
 * Not for secrets. */
double server_random(struct server *srv);
/* The drain (SIGTERM, or after handover_timeout): the connections queued at the signal are
 * accepted unless a new generation serves the listener, then every connection drains. */
void server_drain(struct server *srv);
/* Reload (lifecycle.c): recomputes what depends on cfg (the deadlines' timevals). */
void server_config_changed(struct server *srv);

/* Called by conn.c when a connection is gone (the drain may be complete). */
void server_conn_closed(struct server *srv);

#endif
