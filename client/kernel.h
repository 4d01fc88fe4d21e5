/* kernel: the kernel's own account of a run, as ground truth beside the client's counts:
 * the TcpExt counters (aborts, TIME_WAIT overflow, listen overflows and drops) read at the
 * start and at the end of the run, as deltas, and the TCP line of /proc/net/sockstat at the
 * end with its limits (common/kstat.c).
 *
 * Per network namespace, not per process: a delta counts every socket of the client's
 * namespace, the server's too when it runs there, and any other process's. So it is read
 * once per run, by the process that starts it (the parent of --procs workers), never per
 * worker. Of sockstat, inuse and tw are the namespace's; orphan, alloc and mem are the
 * whole host's, and their limits (tcp_max_orphans, tcp_mem) can only be read in the
 * initial network namespace.
 *
 * Merged (`load-client merge`): the deltas add up (runs on several machines or in several
 * namespaces; two runs in one namespace at the same time would both count its events), the
 * sockstat figures take the largest of any result and the limits the smallest: the worst
 * case. A figure that one of the merged results lacks is missing from the merge, so an
 * expectation about it is unknown rather than checked against part of the run.
 *
 * /proc/net/sockstat's inuse counts IPv4 sockets only (its other figures cover both
 * families): the IPv6 ones are the TCP6 line of /proc/net/sockstat6, read beside it.
 *
 * JSON: "kernel": {"available": true, "delta": {"TCPAbortOnClose": N, ...},
 *   "sockstat": {"inuse": N, "orphan": N, "tw": N, "alloc": N, "mem": N},
 *   "sockstat6": {"inuse": N} (absent when unreadable, and in older results),
 *   "limits": {"tcp_max_orphans": N, "tcp_mem_low": N, ...}}, or {"available": false};
 * figures that could not be read are left out. */
#ifndef TEARDOWN_KERNEL_H
#define TEARDOWN_KERNEL_H

#include "json.h"
#include "kstat.h"

#include <stdio.h>

struct kernel_view {
	int available;		    /* 1: read at the start and at the end of the run */
	struct kstat k;		    /* TcpExt: deltas over the run; sockstat: at the end */
	struct kstat_limits limits; /* at the end */
	int inuse6_found;	    /* TCP6 inuse of /proc/net/sockstat6 could be read */
	uint64_t inuse6;	    /* IPv6 TCP sockets in use at the end */
};

/* The inuse figure of the "TCP6:" line of /proc/net/sockstat6's text. 0, or -1. */
int kernel_parse_sockstat6(const char *text, uint64_t *inuse);

/* The counters at the start of a run, and the files to read them again at its end. */
struct kernel_watch {
	struct kstat_files f;
	struct kstat start;
};

/* Opens the files and takes the first reading (a file that cannot be read is logged once
 * and its figures stay unknown). */
void kernel_start(struct kernel_watch *w);
/* The second reading, the deltas and the limits into *v; closes the files. */
void kernel_end(struct kernel_watch *w, struct kernel_view *v);

/* dst = src when first, else the merge described above. */
void kernel_merge(struct kernel_view *dst, const struct kernel_view *src, int first);

void kernel_json(struct jw *w, const struct kernel_view *v);
/* n is the "kernel" member or NULL (results written before it existed: not available).
 * 0, or -1 with a reason. */
int kernel_read(struct kernel_view *v, const struct jnode *n, char *err, size_t errlen);
/* The "kernel (this network namespace)" block of the final table. */
void kernel_table(FILE *f, const struct kernel_view *v, int merged);

/* An --expect key after "kernel.": a TcpExt name (delta over the run, e.g. TCPAbortOnClose)
 * or sockstat.NAME (at the end: inuse, orphan, tw, alloc, mem), sockstat6.inuse. 0 with
 * *out; 1 when it cannot be known (reason in why); -1 when there is no such key. */
int kernel_lookup(const struct kernel_view *v, const char *what, double *out, char *why,
		  size_t whylen);

#endif
