/* slots: the workers' figures in shared memory, each slot a latch (see slots.h). */
#include "slots.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A reader gives up on a slot whose seq moves during every one of this many copies (its
 * writer is counting faster than a copy takes, thousands of times in a row). */
#define SLOTS_READ_TRIES 1000

/* This build's slot layout: the hand-kept version above the size of a slot, which changes
 * by itself when a field is added to struct stats or the figures. */
#define SLOTS_LAYOUT (((uint64_t)SLOTS_LAYOUT_VERSION << 32) | (uint64_t)sizeof(struct slot))

struct slot {
	atomic_uint seq;
	struct slot_figures v[2];
};

struct slots {
	uint64_t layout; /* SLOTS_LAYOUT: first, so any build can read it */
	int n;
	size_t len;	   /* of the mapping */
	struct slot *slot; /* n of them, right after this header in the mapping */
};

struct slots *slots_map(int n)
{
	size_t len = sizeof(struct slots) + (size_t)n * sizeof(struct slot);
	struct slots *s;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	/* Zero-filled: every slot empty (not live), seq 0, every histogram empty. */
	s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	s->layout = SLOTS_LAYOUT;
	s->n = n;
	s->len = len;
	s->slot = (struct slot *)(s + 1);
	return s;
}

void slots_unmap(struct slots *s)
{
	if (s != NULL)
		munmap(s, s->len);
}

int slots_count_of(const struct slots *s)
{
	return s != NULL ? s->n : 0;
}

/* ---- the writer -------------------------------------------------------------------- */

/* Moves readers to the other copy and returns the one they left, for the writer. The
 * fences order the writes to the previous copy before the increment, and the increment
 * before the writes to the returned one (smp_wmb on both sides, as the kernel's
 * raw_write_seqcount_latch). One writer at a time, so a relaxed increment suffices. */
static struct slot_figures *latch_flip(struct slot *sl)
{
	unsigned seq;

	atomic_thread_fence(memory_order_release);
	seq = atomic_fetch_add_explicit(&sl->seq, 1, memory_order_relaxed) + 1;
	atomic_thread_fence(memory_order_release);
	return &sl->v[(seq & 1) ^ 1];
}

/* NULL too for a mapping of another layout: neither read nor written. */
static struct slot *slot_at(struct slots *s, int i)
{
	return s != NULL && s->layout == SLOTS_LAYOUT && i >= 0 && i < s->n ? &s->slot[i] : NULL;
}

/* Only what an accept or a close changes: a few words per copy, never the histogram. */
void slots_count(struct slots *s, int i, const struct stats *st)
{
	struct slot *sl = slot_at(s, i);

	if (sl == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		struct slot_figures *f = latch_flip(sl);

		f->live = 1;
		f->stats.open = st->open;
		f->stats.accepted = st->accepted;
		memcpy(f->stats.closed, st->closed, sizeof(f->stats.closed));
	}
}

void slots_publish(struct slots *s, int i, const struct stats *st, const struct watchdog_fds *fds,
		   const struct watchdog_close_wait *cw)
{
	struct slot *sl = slot_at(s, i);

	if (sl == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		struct slot_figures *f = latch_flip(sl);

		f->live = 1;
		f->stats = *st;
		if (fds != NULL)
			f->fds = *fds;
		else
			memset(&f->fds, 0, sizeof(f->fds));
		if (cw != NULL)
			f->cw = *cw;
		else
			memset(&f->cw, 0, sizeof(f->cw));
	}
}

static void figures_retire(struct slot_figures *f, int mid_update)
{
	stats_add_counters(&f->retired, &f->stats);
	f->retired.lost += f->stats.open;
	f->retired.lost_unknown += (uint64_t)mid_update;
	memset(&f->stats, 0, sizeof(f->stats)); /* an all-zero hist is empty */
	memset(&f->fds, 0, sizeof(f->fds));
	memset(&f->cw, 0, sizeof(f->cw));
	f->live = 0;
}

/* The dead worker wrote only the copy readers were not using, so v[seq & 1] is whole; the
 * other may be torn and is overwritten first. One flip (odd seq) or two (even) leave seq
 * even, as a worker expects to find it, and both copies equal. */
int slots_retire(struct slots *s, int i)
{
	struct slot *sl = slot_at(s, i);
	unsigned seq;
	int mid;
	struct slot_figures *whole, *other;

	if (sl == NULL)
		return 0;
	seq = atomic_load_explicit(&sl->seq, memory_order_acquire);
	mid = (int)(seq & 1);
	whole = &sl->v[seq & 1];
	other = &sl->v[(seq & 1) ^ 1];
	if (!whole->live && whole->stats.accepted == 0 && !mid)
		return 0; /* it died before counting anything: nothing to retire */
	*other = *whole;
	figures_retire(other, mid);
	latch_flip(sl); /* readers now use `other` */
	*whole = *other;
	if (!mid)
		latch_flip(sl);
	return mid;
}

/* ---- readers ----------------------------------------------------------------------- */

int slots_read(struct slots *s, int i, struct slot_figures *out)
{
	struct slot *sl = slot_at(s, i);

	if (sl == NULL)
		return -1;
	for (int t = 0; t < SLOTS_READ_TRIES; t++) {
		unsigned a = atomic_load_explicit(&sl->seq, memory_order_acquire);

		memcpy(out, &sl->v[a & 1], sizeof(*out));
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) == a)
			return 0;
	}
	return -1;
}

static void fds_add(struct watchdog_fds *a, const struct watchdog_fds *b)
{
	a->valid = a->valid && b->valid;
	a->open += b->open;
	a->conns += b->conns;
	a->own += b->own;
	a->unaccounted += b->unaccounted;
}

static void cw_add(struct watchdog_close_wait *a, const struct watchdog_close_wait *b)
{
	a->flushing += b->flushing;
	a->overdue += b->overdue;
	a->past_fin += b->past_fin;
	a->warnings += b->warnings;
	if (b->oldest_ms > a->oldest_ms)
		a->oldest_ms = b->oldest_ms;
}

int slots_sum(struct slots *s, int self, struct stats *total, struct watchdog_fds *fds,
	      struct watchdog_close_wait *cw, int *unread)
{
	struct slot_figures *copy = malloc(sizeof(*copy));
	int n = 0;

	*unread = 0;
	for (int i = 0; s != NULL && i < s->n; i++) {
		if (copy == NULL || slots_read(s, i, copy) < 0) {
			(*unread)++;
			continue;
		}
		stats_add_counters(total, &copy->retired);
		if (i == self || !copy->live)
			continue;
		stats_add_counters(total, &copy->stats);
		stats_add_gauges(total, &copy->stats);
		fds_add(fds, &copy->fds);
		cw_add(cw, &copy->cw);
		n++;
	}
	free(copy);
	return n;
}
