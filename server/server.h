/* server: one process's listener, signals, connection table and graceful drain. */
#ifndef TEARDOWN_SERVER_SERVER_H
#define TEARDOWN_SERVER_SERVER_H

#include "config.h"
#include "params.h"
#include "stats.h"

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
	int lfd;              /* listening socket, -1 once closed */
	int reserve_fd;       /* spare fd given up on EMFILE to accept-and-close */
	struct event *ev_accept;
	struct event *ev_accept_resume; /* ends an EMFILE pause */
	struct event *ev_shutdown;      /* shutdown_timeout during the drain */
	struct event *ev_tick;		/* census_interval: measure, then publish */
	struct event *ev_signals[4];    /* SIGTERM, SIGINT, SIGUSR1, parent_death_signal */
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
	struct looplag *lag;       /* the event loop's lateness; NULL when not measured */
	/* hb_tv, fin_tv when no common timeout was left (server_deadline_tv). */
	struct timeval hb_plain, fin_plain;
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

/* Called by conn.c when a connection is gone (the drain may be complete). */
void server_conn_closed(struct server *srv);

#endif
