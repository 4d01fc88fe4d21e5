#include "deadpeer.h"
#include "fault.h"
#include "sock.h"

#include <stdlib.h>

int deadpeer_crash(int fd)
{
	return sock_set_quickack(fd) < 0 || sock_set_repair(fd, 1) < 0 ? -1 : 0;
}

/* Requests of one transaction: the elements and their cookies. */
struct requests {
	char **elem;
	void **cookie;
	size_t n;
};

struct deadpeer_batch {
	struct event *ev;
	/* [cur]: filling; [!cur]: the transaction being handed to the callback */
	struct requests join[2], leave[2];
	int cur;
	char **elems; /* the transaction's joins, then its leaves */
	size_t max;
	deadpeer_done_fn done;
	void *arg;
};

/* Once per loop iteration with work: one nft transaction for every request so far. */
static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deadpeer_batch *b = arg;
	const struct requests *j = &b->join[b->cur], *l = &b->leave[b->cur];
	int ok;

	(void)fd;
	(void)what;
	b->cur ^= 1;
	b->join[b->cur].n = b->leave[b->cur].n = 0;
	for (size_t i = 0; i < j->n; i++)
		b->elems[i] = j->elem[i];
	for (size_t i = 0; i < l->n; i++)
		b->elems[j->n + i] = l->elem[i];
	ok = fault_update(b->elems, j->n, b->elems + j->n, l->n) == 0;
	b->done(b->arg, j->cookie, j->n, l->cookie, l->n, ok);
}

static void request(struct deadpeer_batch *b, struct requests *q, char *elem, void *cookie)
{
	q->elem[q->n] = elem;
	q->cookie[q->n] = cookie;
	q->n++;
	event_active(b->ev, EV_TIMEOUT, 1);
}

void deadpeer_join(struct deadpeer_batch *b, char *elem, void *cookie)
{
	request(b, &b->join[b->cur], elem, cookie);
}

void deadpeer_leave(struct deadpeer_batch *b, char *elem, void *cookie)
{
	request(b, &b->leave[b->cur], elem, cookie);
}

static int requests_alloc(struct requests *q, size_t max)
{
	q->elem = calloc(max, sizeof(*q->elem));
	q->cookie = calloc(max, sizeof(*q->cookie));
	return q->elem != NULL && q->cookie != NULL ? 0 : -1;
}

struct deadpeer_batch *deadpeer_batch_new(struct event_base *base, size_t max,
					  deadpeer_done_fn done, void *arg)
{
	struct deadpeer_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->max = max;
	b->done = done;
	b->arg = arg;
	b->elems = calloc(max, sizeof(*b->elems));
	b->ev = event_new(base, -1, 0, batch_cb, b);
	if (b->elems == NULL || b->ev == NULL)
		goto fail;
	for (int i = 0; i < 2; i++) {
		if (requests_alloc(&b->join[i], max) < 0 || requests_alloc(&b->leave[i], max) < 0)
			goto fail;
	}
	return b;
fail:
	deadpeer_batch_free(b);
	return NULL;
}

void deadpeer_batch_free(struct deadpeer_batch *b)
{
	if (b == NULL)
		return;
	if (b->ev != NULL)
		event_free(b->ev);
	for (int i = 0; i < 2; i++) {
		free(b->join[i].elem);
		free(b->join[i].cookie);
		free(b->leave[i].elem);
		free(b->leave[i].cookie);
	}
	free(b->elems);
	free(b);
}
