/* cwboard: see cwboard.h. */
#include "cwboard.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A reader gives up after this many copies that a post overlapped (a post takes
 * microseconds per thousand sockets and comes once per census_interval). */
#define CWBOARD_READ_TRIES 8

struct cwboard {
	atomic_uint_fast64_t seq; /* odd while a post is being written */
	uint64_t gen;		  /* posts so far */
	size_t n;		  /* sockets on the board */
	size_t capacity;
	size_t len; /* of the mapping */
	struct cwboard_rec v[];
};

struct cwboard *cwboard_map(size_t capacity)
{
	size_t len = sizeof(struct cwboard) + capacity * sizeof(struct cwboard_rec);
	struct cwboard *b;

	if (capacity == 0 || capacity > (SIZE_MAX - sizeof(*b)) / sizeof(struct cwboard_rec)) {
		errno = EINVAL;
		return NULL;
	}
	b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (b == MAP_FAILED)
		return NULL;
	b->capacity = capacity;
	b->len = len;
	return b;
}

void cwboard_unmap(struct cwboard *b)
{
	if (b != NULL)
		munmap(b, b->len);
}

size_t cwboard_capacity(const struct cwboard *b)
{
	return b != NULL ? b->capacity : 0;
}

size_t cwboard_post(struct cwboard *b, const struct cwboard_rec *v, size_t n)
{
	uint_fast64_t s = atomic_load_explicit(&b->seq, memory_order_relaxed);

	if (n > b->capacity)
		n = b->capacity;
	/* Odd: a writer died half way; this post starts from even again. */
	s += (s & 1) ? 1 : 2;
	atomic_store_explicit(&b->seq, s - 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	if (n > 0)
		memcpy(b->v, v, n * sizeof(*v));
	b->n = n;
	b->gen++;
	atomic_store_explicit(&b->seq, s, memory_order_release);
	return n;
}

static int cwboard_reserve(struct cwboard_rec **v, size_t *cap, size_t n)
{
	struct cwboard_rec *p;

	if (n <= *cap)
		return 0;
	p = realloc(*v, n * sizeof(*p));
	if (p == NULL)
		return -1;
	*v = p;
	*cap = n;
	return 0;
}

int cwboard_read(struct cwboard *b, struct cwboard_rec **v, size_t *cap, size_t *n, uint64_t *gen)
{
	uint64_t last = *gen;

	for (int tries = 0; tries < CWBOARD_READ_TRIES; tries++) {
		uint_fast64_t s = atomic_load_explicit(&b->seq, memory_order_acquire);
		size_t len = b->n;

		if (s & 1)
			continue;
		if (last != 0 && b->gen == last &&
		    atomic_load_explicit(&b->seq, memory_order_acquire) == s)
			return 0; /* the post already read: *v and *n stand */
		if (len > b->capacity)
			continue; /* torn: seq will tell */
		if (cwboard_reserve(v, cap, len > 0 ? len : 1) < 0) {
			errno = ENOMEM;
			return -1;
		}
		if (len > 0)
			memcpy(*v, b->v, len * sizeof(**v));
		*gen = b->gen;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&b->seq, memory_order_relaxed) == s) {
			*n = len;
			return 0;
		}
	}
	errno = EAGAIN;
	return -1;
}
