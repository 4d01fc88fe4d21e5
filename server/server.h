/* server: one process's listener, signals, connection table and graceful drain. */
#ifndef TEARDOWN_SERVER_SERVER_H
#define TEARDOWN_SERVER_SERVER_H

#include "config.h"
#include "kstat.h"
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
struct slots;
struct watchdog;

/* What one server process starts with besides its config, given to server_init: by main.c
 * for a lone server, by workers.c for each worker (the parent fills the shared part before
 * forking). Nothing about a process's start is set beforehand in a file-scope variable. */
struct server_params {
	const char *port_file;	       /* --port-file: "PORT\n" once listening; NULL: none */
	const char *metrics_port_file; /* --metrics-port-file, likewise for /metrics */
	int reuseport;		       /* several workers share the port */
	int worker;		       /* this worker's index (0 serves /metrics); 0 alone */
	struct slots *slots;	       /* the workers' shared figures; NULL without workers */
	int metrics_fd;		       /* the /metrics listener the workers' parent opened; -1 alone */
	int have_kbase;		       /* kbase holds the kernel counters at the parent's start */
	struct kstat kbase;	       /* (the baseline of /metrics' kernel deltas) */
	/* A listening socket for cfg->listen to serve instead of opening one: the workers'
	 * parent's (inherited), or one adopted at start; -1: open one. */
	int listen_fd;
	/* Sockets for cfg->listen adopted at start (LISTEN_FDS: an upgrade or systemd), checked
	 * against the config; the workers' parent gives them to its workers. */
	int adopted[16];
	int nadopted;
	int ready_fd; /* a new generation's ready pipe (upgrade.h); -1 */
	/* What a reload and an upgrade start from: the command line's config part (read
	 * again by a reload), the executable's path resolved at start and the arguments (a
	 * new generation is started with them). */
	const struct config_args *conf_args;
	const char *exe;
	char *const *argv;
	int control_fd; /* a worker's end of its parent's control socket (control.h); -1 */
};

TAILQ_HEAD(conn_list, conn);

struct server {
	const struct server_config *cfg;
	struct event_base *base;
	int lfd;              /* listening socket, -1 once closed */
	int reserve_fd;       /* spare fd given up on EMFILE to accept-and-close */
	struct event *ev_accept;
	struct event *ev_accept_resume; /* ends an EMFILE pause */
	struct event *ev_shutdown;      /* shutdown_timeout during the drain */
	struct event *ev_signals[3];    /* SIGTERM, SIGINT, SIGUSR1 */
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
	struct watchdog *watchdog; /* census timer, CLOSE_WAIT watchdog, fd accounting */
	struct looplag *lag;       /* the event loop's lateness; NULL when not measured */
	/* hb_tv, fin_tv when no common timeout was left (server_deadline_tv). */
	struct timeval hb_plain, fin_plain;
	/* Reload and upgrade (lifecycle.c). cfg points at cfg_own: a reload changes it in place. */
	struct server_config cfg_own;
	struct event *ev_life[3];     /* alone: SIGHUP, SIGUSR2, SIGCHLD; a worker: its control */
	struct event *ev_upgrade;     /* the new generation's ready pipe */
	struct event *ev_upgrade_due; /* upgrade_timeout */
	struct event *ev_handover;    /* handover_timeout, then the drain */
	struct upgrade upgrade;	      /* the new generation under way, or handed over to */
	int64_t upgrade_start_us;
	int handing_over; /* a new generation serves the listeners; this one ends its own */
	int reload_ok;	  /* the last reload's result (1 before any) */
	int64_t reload_time_ms; /* and its wall-clock time; 0 before any */
};

/* Resolves, binds and listens; writes the port file. Returns 0, or -1 after logging
 * (*exit_code set: 2 for a config problem such as a port in use, 1 otherwise). */
int server_init(struct server *srv, const struct server_config *cfg,
		const struct server_params *params, int *exit_code);
/* Runs until drained. Returns the process exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);

/* Writes "PORT\n" to PATH.tmp, then renames it to PATH, so a reader never sees a partial
 * number (--port-file, --metrics-port-file, workers). 0, or -1 with errno. */
int server_write_port_file(const char *path, int port);

/* The exit status for a failed bind or listen: 2 when the config must change (the
 * address is in use, not local, or privileged), 1 otherwise. */
int server_listen_exit_code(int err);

/* The timeval that arms a deadline of ms milliseconds, NULL when ms <= 0 (off). Normally
 * libevent's common timeout for that duration: one queue per distinct duration, O(1) to
 * add; event_base_init_common_timeout returns the one the base already has for a
 * duration, so each value is reused. libevent allows at most 256 per base
 * (MAX_COMMON_TIMEOUTS): past that, or without memory, *fallback is set to the plain
 * duration and returned (a heap timer, O(log n) to add), so a deadline is never turned off
 * for want of a queue. */
const struct timeval *server_deadline_tv(struct event_base *base, int64_t ms,
					 struct timeval *fallback);

/* The drain (SIGTERM, or after handover_timeout): the connections queued at the signal are
 * accepted unless a new generation serves the listener, then every connection drains. */
void server_drain(struct server *srv);
/* Reload (lifecycle.c): recomputes what depends on cfg (the deadlines' timevals). */
void server_config_changed(struct server *srv);

/* Called by conn.c when a connection is gone (the drain may be complete). */
void server_conn_closed(struct server *srv);

#endif
