/* clockref: starting runs on several hosts together (--start-at) and saying how far each
 * host's clock is from a reference (--time-reference), so that their results, merged,
 * can be read as one run. There is no coordinator: each host sleeps until the time given
 * on its own clock, so hosts start together as closely as their clocks agree, which is
 * what the offset measures.
 *
 * The offset is measured against an HTTP server's Date header (any web server, or the
 * server's host): its resolution is one second, so the reference is asked repeatedly
 * (every few ms, for at most about 1.5 s) until its Date turns to the next second; the
 * moment it turned lies between the send of the last request that saw the old second and
 * the answer of the first that saw the new one: the offset is given with that window's
 * half as its uncertainty (about 10 ms on a LAN). */
#ifndef TEARDOWN_CLOCKREF_H
#define TEARDOWN_CLOCKREF_H

#include <stddef.h>
#include <stdint.h>

/* RFC 3339 (2026-12-06T11:30:00Z, 2026-12-06T12:30:00.5+01:00) or seconds since 1970
 * (1796556600, 1796556600.25) into microseconds since 1970. 0, or -1 with the reason. */
int clockref_parse_time(const char *s, int64_t *unix_us, char *err, size_t errlen);
/* Sleeps until the wall clock reads unix_us (at once when it is past). */
void clockref_wait_until(int64_t unix_us);

struct clock_info {
	char host[64];	     /* this host's name (gethostname) */
	int64_t start_at_us; /* --start-at, 0 without */
	int64_t started_us;  /* when the run started (wall clock) */
	int known;	     /* the offset was measured */
	int64_t offset_us;   /* the reference's clock minus this host's */
	int64_t uncertainty_us;
	char reference[256]; /* --time-reference, "" without */
	char why[160];	     /* not known: why */
};

/* Measures the offset against the reference URL (http://HOST:PORT/PATH, numeric host);
 * fills info (known, or why not). */
void clockref_measure(struct clock_info *info, const char *url);

#endif
