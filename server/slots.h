/* slots: each worker's figures in memory shared by the workers' parent (the supervisor)
 * and every worker, so the process that reports (worker 0's /metrics, the parent's total
 * counters line) sums them, and so a worker that dies leaves exact figures behind.
 *
 * One slot per worker index. Its worker is the only writer while it lives; the parent
 * writes it only after reaping that worker and before starting the next one in its place.
 * A worker puts its connection counts (accepted, open, closed by reason) into its slot at
 * every accept and every close, so at its death `open` is exact: those connections died
 * with it and become `lost`. The other figures (bytes, the FIN-to-close histogram, fd
 * accounting, CLOSE_WAIT) are published at each census.
 *
 * The slot is a latch (two copies and a sequence number, as the Linux kernel's
 * seqcount_latch): the writer increments seq, writes copy (seq & 1) ^ 1 (the one readers
 * just left), increments seq again and writes the other copy; readers copy copy
 * (seq & 1) and retry only if seq moved meanwhile. Readers never wait for the writer,
 * and a writer that dies at any point leaves the copy readers use whole: the parent retires
 * a dead worker's last complete figures exactly. An odd seq at death means the worker died
 * between the two halves of an update: the complete copy is the one before it, so that
 * one accept or close is not counted, and the death is counted in lost_unknown. */
#ifndef TEARDOWN_SERVER_SLOTS_H
#define TEARDOWN_SERVER_SLOTS_H

#include "figures.h"
#include "stats.h"

#include <stddef.h>
#include <stdint.h>

struct slots;

/* The mapping starts with its layout, a uint64_t: SLOTS_LAYOUT_VERSION in the high 32 bits,
 * the size of one slot in the low ones. A process of another build that finds a mapping
 * of another layout (an upgrade that hands the mapping on across exec) neither reads nor
 * writes it: slots_read fails, slots_count and slots_publish do nothing. Bump the version
 * when a field changes meaning or place without changing the size (the size catches an
 * added field by itself); struct stats is described by stats_fields (stats.h). */
#define SLOTS_LAYOUT_VERSION 1

/* What one slot holds. */
struct slot_figures {
	int live;		 /* its worker has published and not been retired */
	struct stats stats;	 /* the live worker's figures */
	struct stats retired;	 /* counters of the earlier workers in this slot, lost included */
	struct watchdog_fds fds; /* the live worker's fd accounting ... */
	struct watchdog_close_wait cw; /* ... and CLOSE_WAIT figures, at its last census */
};

/* n zeroed slots in a MAP_SHARED anonymous mapping (before fork). NULL with errno. */
struct slots *slots_map(int n);
void slots_unmap(struct slots *s);
int slots_count_of(const struct slots *s);

/* The worker of slot i, at every accept and close: its counts now. */
void slots_count(struct slots *s, int i, const struct stats *st);
/* The worker of slot i, at each census: all its figures (fds and cw may be NULL: zero). */
void slots_publish(struct slots *s, int i, const struct stats *st, const struct watchdog_fds *fds,
		   const struct watchdog_close_wait *cw);
/* The parent, once the worker of slot i is reaped: its counters join `retired`, its open
 * connections become lost, the slot is no longer live. Returns 1 when the worker died in
 * the middle of an update (counted in lost_unknown), else 0. */
int slots_retire(struct slots *s, int i);

/* A consistent copy of slot i; -1 when it kept changing for every try. */
int slots_read(struct slots *s, int i, struct slot_figures *out);
/* Adds every slot's retired counters, and the live figures of every live slot but `self`
 * (-1: none; the caller adds its own), to total, fds and cw. Returns the number of live
 * slots added; *unread counts slots left out because they kept changing. */
int slots_sum(struct slots *s, int self, struct stats *total, struct watchdog_fds *fds,
	      struct watchdog_close_wait *cw, int *unread);

#endif
