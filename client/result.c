#include "result.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[PHASE_N] = {"connect", "first_reply", "echo", "close"};
static const char *const special_kinds[FAIL_KINDS - FAIL_ERRNO_MAX] = {
    "deadline", "eof", "mismatch", "crash_ports", "backlog"};

#define COUNT(f, group, flags, help)                                                               \
	{                                                                                          \
#f, #f, group, RK_COUNT, offsetof(struct result, f), flags, help                   \
	}
#define DEAD(f, json, help)                                                                        \
	{                                                                                          \
#f, json, RG_DEAD_PEERS, RK_DEAD, offsetof(struct result, f), 0, help              \
	}
/* In the order of the JSON document and of the usage's list of keys. */
const struct result_field result_fields[] = {
    COUNT(attempted, RG_COUNTS, 0, "connections started"),
    COUNT(connected, RG_COUNTS, 0, "TCP handshake completed"),
    COUNT(established, RG_COUNTS, 0, "first echo received"),
    COUNT(completed, RG_COUNTS, 0, "scenario finished as planned"),
    COUNT(failed, RG_COUNTS, 0, "ended by a failure (counted in fail[][])"),
    COUNT(cancelled, RG_COUNTS, 0, "still connecting when the run ended"),
    COUNT(closed_by_server, RG_COUNTS, 0,
	  "connections the server closed (FIN or RST) that are not failures: silent ones "
	  "while held, and with --reconnect any it closed while the scenario still wanted it"),
    COUNT(echo_mismatch, RG_COUNTS, 0, "messages whose echo differed"),
    COUNT(messages, RG_COUNTS, 0, "echoes received complete and correct"),
    COUNT(reconnects, RG_COUNTS, RF_OPTIONAL,
	  "connections opened to replace one the server closed"),
    COUNT(interrupted, RG_COUNTS, RF_OPTIONAL,
	  "messages unanswered or partly echoed at the server's close"),
    COUNT(bytes_sent, RG_COUNTS, 0, "bytes written"),
    COUNT(bytes_received, RG_COUNTS, 0, "bytes read"),
    COUNT(msgs_due, RG_COUNTS, RF_OPTIONAL,
	  "open loop: messages that came due on their connection's schedule, sent or not"),
    COUNT(late_sends, RG_COUNTS, RF_OPTIONAL,
	  "open loop: messages that could not go when due (the pipeline full, not connected "
	  "yet, reconnecting) and went late"),
    COUNT(unsent, RG_COUNTS, RF_OPTIONAL,
	  "open loop: messages due and never sent (their connection failed or the run ended "
	  "first)"),
    COUNT(late_starts, RG_COUNTS, RF_OPTIONAL,
	  "--rate: connections opened after their time on the schedule because no slot (or "
	  "no room under --max-connecting) was free then"),
    COUNT(cpu_us, RG_COUNTS, RF_OPTIONAL, "CPU time of the client's workers (user + system)"),
    COUNT(cpu_saturated_s, RG_COUNTS, RF_OPTIONAL,
	  "seconds in which a worker used 90 % or more of a CPU: its own timing, not the "
	  "server's, may be what was measured"),
    COUNT(ramped_down, RG_COUNTS, RF_OPTIONAL,
	  "--stages: connections a ramp-down closed (the highest slots, the last opened; "
	  "also counted completed, or cancelled when still connecting)"),
    COUNT(warmup_failed, RG_COUNTS, RF_OPTIONAL,
	  "--warmup: failures during the warm-up (not in failed nor in the failures)"),
    DEAD(crashed, "crash", "crash connections closed in repair mode"),
    DEAD(vanished, "vanish", "vanish connections whose packets are dropped"),
    COUNT(dropped_from_server, RG_DEAD_PEERS, 0,
	  "vanish: packets from the server the drop rules discarded (probes, "
	  "retransmissions, its close; nftables counters read at the end)"),
    COUNT(dropped_to_server, RG_DEAD_PEERS, 0,
	  "vanish: packets the vanished connections would have sent"),
    COUNT(open_now, RG_LIVE, 0, "connections open now"),
    COUNT(closing_now, RG_LIVE, 0, "half-closed connections now"),
    COUNT(connecting_now, RG_LIVE, 0, "connections not established yet now"),
};
#undef COUNT
#undef DEAD
const size_t result_nfields = sizeof(result_fields) / sizeof(result_fields[0]);

#define HIST(name, label, flags, help)                                                             \
	{                                                                                          \
#name, label, offsetof(struct result, name##_us), flags, help                      \
	}
const struct result_hist result_hists[] = {
    HIST(connect, "connect", 0, "connect() to handshake complete"),
    HIST(rtt, "echo rtt", 0, "a message's first byte written to its echo's last read"),
    HIST(fin_to_fin, "fin-to-fin", 0, "half-close: our FIN to the server's FIN"),
    HIST(server_close, "server close", 0, "silent: our last byte to the server closing"),
    HIST(latency, "latency (due)", RF_OPTIONAL,
	 "open loop: a message's due time to its echo's last read (a full pipeline, the "
	 "connect and reconnects included)"),
    HIST(late, "late sends", RF_OPTIONAL,
	 "open loop: how late the late sends went out (sent minus due)"),
    HIST(send_lag, "send lag", RF_OPTIONAL,
	 "open loop: the client's own lateness, sent minus due of the messages whose slot was "
	 "free when due"),
    HIST(connect_due, "connect (due)", RF_OPTIONAL,
	 "a connection's intended open time (its --rate schedule, or its slot free) to its "
	 "handshake complete"),
};
#undef HIST
const size_t result_nhists = sizeof(result_hists) / sizeof(result_hists[0]);

const char *result_group_json(enum result_group g)
{
	static const char *const names[RG_N] = {"counts", "dead_peers", NULL};

	return g < RG_N ? names[g] : NULL;
}

uint64_t result_field_value(const struct result *r, const struct result_field *f)
{
	const char *p = (const char *)r + f->offset;

	if (f->kind == RK_DEAD)
		return ((const struct dead_peers *)p)->count;
	return *(const uint64_t *)p;
}

const struct hist *result_hist_of(const struct result *r, const struct result_hist *h)
{
	return (const struct hist *)((const char *)r + h->offset);
}

struct hist *result_hist_at(struct result *r, const struct result_hist *h)
{
	return (struct hist *)((char *)r + h->offset);
}

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

void result_add_counters(struct result *dst, const struct result *src)
{
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		char *d = (char *)dst + f->offset;
		const char *s = (const char *)src + f->offset;
		if (f->kind == RK_DEAD)
			result_dead_merge((struct dead_peers *)d, (const struct dead_peers *)s);
		else
			*(uint64_t *)d += *(const uint64_t *)s;
	}
}

void result_merge(struct result *dst, const struct result *src)
{
	result_add_counters(dst, src);
	for (int s = 0; s < SCEN_N; s++)
		dst->by_scenario[s] += src->by_scenario[s];
	for (int p = 0; p < PHASE_N; p++)
		for (int k = 0; k < FAIL_KINDS; k++)
			dst->fail[p][k] += src->fail[p][k];
	if (src->elapsed_us > dst->elapsed_us)
		dst->elapsed_us = src->elapsed_us;
	kernel_merge(&dst->kernel, &src->kernel, dst->parts == 0);
	dst->parts += src->parts;
	for (size_t i = 0; i < result_nhists; i++)
		hist_merge(result_hist_at(dst, &result_hists[i]),
			   result_hist_of(src, &result_hists[i]));
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
