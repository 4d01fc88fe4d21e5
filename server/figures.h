/* figures: what one server process measures about itself at each census besides its
 * counters (stats.h): the fd accounting and the CLOSE_WAIT watchdog's findings (watchdog.c
 * measures them; slots.c carries them from a worker to the process that reports). */
#ifndef TEARDOWN_SERVER_FIGURES_H
#define TEARDOWN_SERVER_FIGURES_H

#include <stdint.h>

struct watchdog_fds {
	int valid;	      /* 0 until measured (or when /proc/self/fd cannot be read) */
	uint64_t open;	      /* entries of /proc/self/fd */
	uint64_t conns;	      /* open fds that belong to the connection table */
	uint64_t own;	      /* open fds that are the server's own (listeners, event loop...) */
	uint64_t unaccounted; /* open - conns - own: leaked or unknown */
};

struct watchdog_close_wait {
	uint64_t flushing;  /* older than the alarm, but flushing to a half-closed peer */
	uint64_t overdue;   /* older than the alarm and not being flushed (warned about) */
	uint64_t past_fin;  /* of the overdue: connections past their fin_timeout */
	uint64_t oldest_ms; /* age of the oldest overdue socket */
	uint64_t warnings;  /* warnings logged since start */
};

#endif
