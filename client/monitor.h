/* monitor: what the run looks like from outside its connections, once a second and at
 * the end: progress on stderr, the --timeline CSV, and the socket-state census of both
 * ends (the client's sockets: remote port = the server's port; the server's: local port).
 *
 * The server's side is counted only when it is visible from here: its address is one of
 * this host's (in this network namespace) and a socket listens on its port. Otherwise its
 * census is "not visible" and expectations about it are unknown. */
#ifndef TEARDOWN_MONITOR_H
#define TEARDOWN_MONITOR_H

#include "census.h"
#include "hist.h"
#include "options.h"
#include "ports.h"
#include "result.h"
#include "scrape.h"
#include "timeline.h"

#include <stdio.h>

struct monitor {
	const struct client_opts *o;
	struct census_sock *cs;	 /* NULL: no census (sock_diag unavailable) */
	struct own_ports *ports; /* the run's local ports (its workers add them) */
	int server_visible;
	int server_unseen;	/* enum census_unseen, when not visible */
	struct result *results; /* the workers' live results */
	int nresults;
	struct result *sum; /* scratch: the workers' counters summed (monitor_sum) */
	FILE *timeline;
	struct hist *rtt; /* with the timeline: [0] all echoes so far, [1] at the last row,
			   * [2] scratch for the interval between them */
	int64_t t0_us;
	uint64_t last_messages;
	int64_t last_us;
	/* --timeline F.jsonl (timeline.h): rows at whole wall-clock seconds, each the
	 * difference of the workers' sum (cur) and its copy at the last row (prev). */
	int jsonl;
	int64_t next_unix_s;  /* the wall-clock second the next tick is due at */
	int64_t next_mono_us; /* CSV: when the next tick is due */
	struct result *cur, *prev;
	struct tl_row *row;
	struct scrape *scrape; /* --metrics: the server's own figures */
};

/* Opens the census and the timeline file, decides whether the server is visible. 0, or
 * -1 when the timeline cannot be written (logged). */
int monitor_init(struct monitor *m, const struct client_opts *o, struct result *results,
		 int nresults);
/* Once a second: a progress line (when asked for) and a timeline row. Returns the
 * microseconds until the next tick (monitor_next_tick_us). */
int64_t monitor_tick(void *m);
/* Until the next tick: a second, or with a JSON lines timeline the next whole second of
 * the wall clock (so that the rows of several hosts line up). */
int64_t monitor_next_tick_us(struct monitor *m);
/* After the run: waits up to --settle for transitional states (SYN_*, FIN_WAIT*,
 * CLOSE_WAIT, LAST_ACK, CLOSING) to drain on both ends, then fills r->client and
 * r->server with the final census. */
void monitor_final(struct monitor *m, struct result *r);
void monitor_close(struct monitor *m);

#endif
