/* watchdog: what one server process checks about itself every census_interval.
 *
 * - The census: every TCP socket of the server's port by state, from sock_diag (port-wide:
 *   with workers it also sees the other workers' sockets, so only the process that reports
 *   port-wide figures, worker 0, asks for every state; the others ask for CLOSE_WAIT only).
 * - The CLOSE_WAIT watchdog. The kernel reports no age for a CLOSE_WAIT socket, so each
 *   one is followed across censuses by its idiag_cookie (unique per socket) and its age
 *   counts from the first census that saw it (or from the FIN, when the connection knows
 *   it). Sockets older than close_wait_alarm are overdue unless the server is deliberately
 *   flushing the echo to a half-closed peer: the connection knows the peer's FIN, still owes
 *   echo (queued output, or input not yet read), and is within fin_timeout. Overdue ones
 *   are warned about (count, oldest age) at most once per census. Census sockets are
 *   matched to connections by inode (idiag_inode == fstat(fd).st_ino).
 * - Fd accounting: the entries of /proc/self/fd against the connection table plus the
 *   server's own fds. The difference is fds nobody accounts for: a leaked socket in CLOSE
 *   (after an RST or a timeout) is invisible to sock_diag and ss, and only shows here. */
#ifndef TEARDOWN_SERVER_WATCHDOG_H
#define TEARDOWN_SERVER_WATCHDOG_H

#include "census.h"
#include "figures.h"

#include <stdint.h>

struct server;

/* Opens the census socket and /proc/self/fd, notes the server's own fds (call it once the
 * listener, the event loop and the metrics endpoint exist, before any connection), and
 * starts the census timer. 0, or -1 after logging (the server can run without it). */
int watchdog_start(struct server *srv);
void watchdog_stop(struct server *srv);

/* Counts the fds now (for the counters line); sets srv->stats.fd_unaccounted. */
void watchdog_refresh_fds(struct server *srv);

/* The latest figures; NULL/0 when the watchdog is not running. */
const struct watchdog_fds *watchdog_fds(const struct server *srv);
const struct watchdog_close_wait *watchdog_close_wait(const struct server *srv);
/* The latest port-wide census (every state), or NULL when this process does not take one
 * or none has succeeded yet. */
const struct census_counts *watchdog_census(const struct server *srv);

#endif
