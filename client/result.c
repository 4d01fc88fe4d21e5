#include "result.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[PHASE_N] = {"connect", "first_reply", "echo", "close"};
static const char *const special_kinds[FAIL_KINDS - FAIL_ERRNO_MAX] = {"deadline", "eof",
								       "mismatch", "crash_ports"};

void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r)); /* an all-zero struct hist is an empty histogram */
	r->parts = 1;
}

static const char *const unseen_keys[UNSEEN_N] = {NULL, "remote", "no_listener", "other_listener",
						  "no_census"};

const char *census_unseen_key(int unseen)
{
	return unseen > 0 && unseen < UNSEEN_N ? unseen_keys[unseen] : NULL;
}

int census_unseen_parse(const char *key)
{
	for (int i = 1; i < UNSEEN_N; i++) {
		if (strcmp(key, unseen_keys[i]) == 0)
			return i;
	}
	return -1;
}

const char *census_unseen_text(const struct census_view *v, char *buf, size_t len)
{
	char port[16] = "its port";

	if (v->port > 0)
		snprintf(port, sizeof(port), "port %d", v->port);
	switch (v->unseen) {
	case UNSEEN_NO_LISTENER:
		snprintf(buf, len, "nothing listens on %s here", port);
		break;
	case UNSEEN_OTHER_LISTENER:
		snprintf(buf, len,
			 "not counted: %s has another listener here (another address or family), "
			 "not the server's",
			 port);
		break;
	case UNSEEN_NO_CENSUS:
		snprintf(buf, len, "unknown: no sock_diag census");
		break;
	default:
		snprintf(buf, len, "not visible from here (another host or network namespace)");
		break;
	}
	return buf;
}

/* Two censuses not counted: the first reason said is kept. */
static void census_unseen_merge(struct census_view *a, const struct census_view *b)
{
	if (a->unseen == UNSEEN_UNKNOWN) {
		a->unseen = b->unseen;
		a->port = b->port;
	}
}

static void census_view_merge(struct census_view *a, const struct census_view *b)
{
	if (!b->visible) {
		if (!a->visible)
			census_unseen_merge(a, b);
		return;
	}
	if (!a->visible) {
		*a = *b;
		return;
	}
	census_add(&a->c, &b->c);
}

/* The same server seen by several runs: each state's largest count, not the sum. */
static void census_view_max(struct census_view *a, const struct census_view *b)
{
	struct census_counts *x = &a->c;
	const struct census_counts *y = &b->c;

	if (!b->visible) {
		if (!a->visible)
			census_unseen_merge(a, b);
		return;
	}
	if (!a->visible) {
		*a = *b;
		return;
	}
#define MAX(f) (x->f = x->f > y->f ? x->f : y->f)
	MAX(total);
	MAX(accept_queue);
	MAX(accept_backlog);
	MAX(recv_q);
	MAX(send_q);
	MAX(elapsed_us);
	for (int s = 0; s < CENSUS_NSTATES; s++) {
		MAX(state[s]);
		for (int t = 0; t < CENSUS_NTIMERS; t++) {
			MAX(timer[s][t].count);
			MAX(timer[s][t].max_expiry_ms);
			MAX(timer[s][t].max_retrans);
		}
	}
#undef MAX
}

void result_merge(struct result *dst, const struct result *src)
{
	dst->attempted += src->attempted;
	dst->connected += src->connected;
	dst->established += src->established;
	dst->completed += src->completed;
	dst->failed += src->failed;
	dst->cancelled += src->cancelled;
	dst->closed_by_server += src->closed_by_server;
	dst->echo_mismatch += src->echo_mismatch;
	dst->messages += src->messages;
	dst->reconnects += src->reconnects;
	dst->interrupted += src->interrupted;
	dst->bytes_sent += src->bytes_sent;
	dst->bytes_received += src->bytes_received;
	for (int s = 0; s < SCEN_N; s++)
		dst->by_scenario[s] += src->by_scenario[s];
	result_dead_merge(&dst->crashed, &src->crashed);
	result_dead_merge(&dst->vanished, &src->vanished);
	dst->dropped_from_server += src->dropped_from_server;
	dst->dropped_to_server += src->dropped_to_server;
	for (int p = 0; p < PHASE_N; p++)
		for (int k = 0; k < FAIL_KINDS; k++)
			dst->fail[p][k] += src->fail[p][k];
	if (src->elapsed_us > dst->elapsed_us)
		dst->elapsed_us = src->elapsed_us;
	kernel_merge(&dst->kernel, &src->kernel, dst->parts == 0);
	dst->parts += src->parts;
	dst->open_now += src->open_now;
	dst->closing_now += src->closing_now;
	hist_merge(&dst->connect_us, &src->connect_us);
	hist_merge(&dst->rtt_us, &src->rtt_us);
	hist_merge(&dst->fin_to_fin_us, &src->fin_to_fin_us);
	hist_merge(&dst->server_close_us, &src->server_close_us);
	census_view_merge(&dst->client, &src->client);
	census_view_max(&dst->server, &src->server);
}

void result_fail(struct result *r, enum phase ph, int kind)
{
	if (kind <= 0 || kind >= FAIL_KINDS)
		kind = FAIL_ERRNO_MAX - 1; /* never lose a failure, even of an odd errno */
	r->failed++;
	r->fail[ph][kind]++;
}

void result_dead(struct dead_peers *d, uint64_t n, int64_t unix_us)
{
	struct dead_peers one = {n, unix_us, unix_us};

	result_dead_merge(d, &one);
}

void result_dead_merge(struct dead_peers *dst, const struct dead_peers *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->first_unix_us < dst->first_unix_us)
		dst->first_unix_us = src->first_unix_us;
	if (dst->count == 0 || src->last_unix_us > dst->last_unix_us)
		dst->last_unix_us = src->last_unix_us;
	dst->count += src->count;
}

int64_t result_unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *phase_name(int ph)
{
	return ph >= 0 && ph < PHASE_N ? phase_names[ph] : "?";
}

int phase_parse(const char *s)
{
	for (int p = 0; p < PHASE_N; p++) {
		if (strcmp(s, phase_names[p]) == 0)
			return p;
	}
	return -1;
}

const char *fail_kind_name(int kind, char *buf, size_t len)
{
	const char *name;

	if (kind >= FAIL_ERRNO_MAX && kind < FAIL_KINDS)
		return special_kinds[kind - FAIL_ERRNO_MAX];
	name = strerrorname_np(kind);
	if (name != NULL)
		return name;
	snprintf(buf, len, "E%d", kind);
	return buf;
}

int fail_kind_parse(const char *s)
{
	char buf[16];

	for (int k = 1; k < FAIL_KINDS; k++) {
		if (strcmp(s, fail_kind_name(k, buf, sizeof(buf))) == 0)
			return k;
	}
	return -1;
}

uint64_t result_fail_phase(const struct result *r, int ph)
{
	uint64_t n = 0;

	for (int k = 0; k < FAIL_KINDS; k++)
		n += r->fail[ph][k];
	return n;
}

uint64_t result_fail_kind(const struct result *r, int kind)
{
	uint64_t n = 0;

	for (int p = 0; p < PHASE_N; p++)
		n += r->fail[p][kind];
	return n;
}
