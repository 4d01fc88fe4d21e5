/* watchdog: what one server process checks about itself every census_interval (server.c
 * runs the timer and publishes what it measured).
 *
 * - The census: every TCP socket of the server's port by state, from sock_diag (port-wide:
 *   with workers it also sees the other workers' sockets). With workers only worker 0
 *   takes it (every state when it serves /metrics, else CLOSE_WAIT only) and posts the
 *   CLOSE_WAIT sockets on a board the others read (cwboard.h): one census per port and
 *   interval, since each one walks every socket of the namespace.
 * - The CLOSE_WAIT watchdog. The kernel reports no age for a CLOSE_WAIT socket, so each
 *   one is followed across censuses by its idiag_cookie (unique per socket) and its age
 *   counts from the first census that saw it (or from the FIN, when the connection knows
 *   it). Sockets older than close_wait_alarm are overdue unless the server is deliberately
 *   flushing the echo to a half-closed peer: the connection knows the peer's FIN, still owes
 *   echo (queued output, or input not yet read), and is within fin_timeout. Overdue ones
 *   are warned about (count, oldest age) at most once per census. Census sockets are
 *   matched to connections by inode (idiag_inode == fstat(fd).st_ino).
 * - Fd accounting: the entries of /proc/self/fd against the connection table plus the
 *   server's own fds (listed only when their number, which the kernel gives cheaply,
 *   differs from the connections plus the server's own fds). The difference is fds nobody accounts
 * for: a leaked socket in CLOSE (after an RST or a timeout) is invisible to sock_diag and ss, and
 * only shows here. */
#ifndef TEARDOWN_SERVER_WATCHDOG_H
#define TEARDOWN_SERVER_WATCHDOG_H

#include "census.h"
#include "config.h"
#include "cwboard.h"
#include "figures.h"

#include <stddef.h>
#include <stdint.h>

struct watchdog;

/* One connection as the watchdog sees it. */
struct watchdog_conn {
	int fd;
	int eof_ignored; /* the peer's EOF was read and ignored (leaky) */
	int peer_fin;	 /* the peer's FIN was read ... */
	int64_t fin_us;	 /* ... at this CLOCK_MONOTONIC time */
	size_t out_len;	 /* echo queued and not yet sent */
};

typedef void watchdog_conn_fn(void *fnarg, const struct watchdog_conn *c);

/* What the watchdog asks the server it watches. The watchdog knows neither the server nor
 * its connections (server.c drives it and answers these): it only measures. */
struct watchdog_owner {
	const struct server_config *cfg;
	int port;	 /* the listener's port, the census's filter */
	int full;	 /* this process reports port-wide figures: census of every state */
	int shared_port; /* other workers' sockets share the port (not ours, not unaccepted) */
	/* With workers: the board on which the census taker (worker 0) posts the port's
	 * CLOSE_WAIT sockets for the others, which take no census (cwboard.h). NULL: this
	 * process takes its own census. */
	struct cwboard *board;
	int census_taker;
	void *arg;
	/* Sets mark[fd] = 1 for each fd below n that the server holds for itself and that may
	 * open or close while it runs (its listener, reserve fd, the metrics endpoint's). */
	void (*mark_own)(void *arg, unsigned char *mark, size_t n);
	/* Calls fn once for each open connection. */
	void (*each_conn)(void *arg, watchdog_conn_fn *fn, void *fnarg);
	/* How many open connections there are (each holds one fd). */
	size_t (*count_conns)(void *arg);
};

/* Opens the census socket and /proc/self/fd and notes the server's own fds: call it once
 * the listener, the event loop and the metrics endpoint exist, before any connection.
 * The owner is copied. NULL after logging when out of memory (the server runs without
 * it); without a census socket or /proc/self/fd it runs with what it has. */
struct watchdog *watchdog_start(const struct watchdog_owner *owner);
void watchdog_stop(struct watchdog *w);

/* One measurement, every census_interval: the census, the CLOSE_WAIT verdicts (warned
 * about), the fd accounting. */
void watchdog_measure(struct watchdog *w);
/* Only the fd accounting, now (for a counters line). */
void watchdog_refresh_fds(struct watchdog *w);
/* on: the port's sockets outside the connection table may be another process's (another
 * generation's during an upgrade's overlap): "not ours", never not_accepted. w may be
 * NULL. */
void watchdog_set_shared_port(struct watchdog *w, int on);

/* The latest figures; NULL when the watchdog is not running (w NULL) or, for cw, has no
 * census socket. fds->valid is 0 while the fds cannot be counted. */
const struct watchdog_fds *watchdog_fds(const struct watchdog *w);
const struct watchdog_close_wait *watchdog_close_wait(const struct watchdog *w);
/* The latest port-wide census (every state), or NULL when this process does not take one
 * or none has succeeded yet. */
const struct census_counts *watchdog_census(const struct watchdog *w);
/* How many censuses this process has taken. */
uint64_t watchdog_censuses(const struct watchdog *w);

#endif
