#include "expect.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_text[] = {"=", "!=", "<=", ">=", "<", ">"};
static const char *const outcome_names[] = {"pending", "ok", "violated", "unknown"};

const char *expect_op_text(enum expect_op op)
{
	return op_text[op];
}

const char *expect_outcome_name(enum expect_outcome o)
{
	return outcome_names[o];
}

/* The counters of result_fields[] by their key (not the live progress). */
static int lookup_counter(const struct result *r, const char *key, double *out)
{
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		if (f->group != RG_LIVE && strcmp(key, f->key) == 0) {
			*out = (double)result_field_value(r, f);
			return 0;
		}
	}
	return -1;
}

/* The implicit expectation's key when some failures are expected (expect_parse). */
#define UNNAMED "failed.unnamed"

static int lookup_failed(const struct result *r, const char *what, double *out)
{
	int ph = phase_parse(what), kind;

	if (ph >= 0) {
		*out = (double)result_fail_phase(r, ph);
		return 0;
	}
	kind = fail_kind_parse(what);
	if (kind < 0)
		return -1;
	*out = (double)result_fail_kind(r, kind);
	return 0;
}

static int lookup_census(const struct census_view *v, const char *side, const char *what,
			 double *out, char *why, size_t whylen)
{
	int st = census_state_parse(what);

	if (st < 0 && strcmp(what, "total") != 0 && strcmp(what, "accept_queue") != 0)
		return -1;
	if (!v->visible) {
		char text[160];
		census_unseen_text(v, text, sizeof(text));
		/* "... are not visible from here (another host ...)", "...: nothing listens" */
		snprintf(why, whylen, "the %s's sockets%s %s", side,
			 strncmp(text, "not visible", 11) == 0 ? " are" : ":", text);
		return 1;
	}
	if (st >= 0)
		*out = (double)v->c.state[st];
	else if (strcmp(what, "total") == 0)
		*out = (double)v->c.total;
	else
		*out = (double)v->c.accept_queue;
	return 0;
}

static const struct hist *hist_by_name(const struct result *r, const char *name, size_t len)
{
	for (size_t i = 0; i < result_nhists; i++) {
		const char *n = result_hists[i].name;
		if (strlen(n) == len && strncmp(name, n, len) == 0)
			return result_hist_of(r, &result_hists[i]);
	}
	return NULL;
}

/* NAME_STAT_ms, e.g. fin_to_fin_p99.9_ms. */
static int lookup_latency(const struct result *r, const char *key, double *out, char *why,
			  size_t whylen)
{
	size_t len = strlen(key);
	const char *stat;
	const struct hist *h;
	double us;

	if (len < 4 || strcmp(key + len - 3, "_ms") != 0)
		return -1;
	for (stat = key + len - 4; stat > key && *stat != '_'; stat--)
		;
	if (stat == key)
		return -1;
	h = hist_by_name(r, key, (size_t)(stat - key));
	if (h == NULL)
		return -1;
	stat++;
	if (strncmp(stat, "max_", 4) == 0)
		us = (double)hist_max(h);
	else if (strncmp(stat, "min_", 4) == 0)
		us = (double)hist_min(h);
	else if (strncmp(stat, "mean_", 5) == 0)
		us = hist_mean(h);
	else if (stat[0] == 'p') {
		char *end;
		double pct = strtod(stat + 1, &end);
		if (end == stat + 1 || strcmp(end, "_ms") != 0 || pct < 0 || pct > 100)
			return -1;
		us = (double)hist_percentile(h, pct);
	} else {
		return -1;
	}
	if (hist_count(h) == 0) {
		snprintf(why, whylen, "no samples");
		return 1;
	}
	*out = us / 1000.0;
	return 0;
}

static int lookup_rate(const struct result *r, const char *key, double *out, char *why,
		       size_t whylen)
{
	double s = (double)r->elapsed_us / 1e6;

	if (strcmp(key, "msgs_per_s") != 0 && strcmp(key, "mb_per_s") != 0)
		return -1;
	if (s <= 0) {
		snprintf(why, whylen, "no elapsed time");
		return 1;
	}
	if (strcmp(key, "msgs_per_s") == 0)
		*out = (double)r->messages / s;
	else
		*out = (double)(r->bytes_sent + r->bytes_received) / s / 1e6;
	return 0;
}

int expect_lookup(const struct result *r, const char *key, double *out, char *why, size_t whylen)
{
	if (lookup_counter(r, key, out) == 0)
		return 0;
	if (strncmp(key, "failed.", 7) == 0)
		return lookup_failed(r, key + 7, out);
	if (strncmp(key, "client.", 7) == 0)
		return lookup_census(&r->client, "client", key + 7, out, why, whylen);
	if (strncmp(key, "server.", 7) == 0)
		return lookup_census(&r->server, "server", key + 7, out, why, whylen);
	if (strncmp(key, "kernel.", 7) == 0)
		return kernel_lookup(&r->kernel, key + 7, out, why, whylen);
	if (strstr(key, "_per_s") != NULL)
		return lookup_rate(r, key, out, why, whylen);
	return lookup_latency(r, key, out, why, whylen);
}

/* Splits "KEY<=VALUE" into its parts. */
static int split(const char *text, struct expectation *e, char *err, size_t errlen)
{
	static const char *const ops[] = {"!=", "<=", ">=", "=", "<", ">"};
	static const enum expect_op codes[] = {EX_NE, EX_LE, EX_GE, EX_EQ, EX_LT, EX_GT};
	size_t klen = strcspn(text, "=!<>");
	char *end;

	if (klen == 0 || klen >= sizeof(e->key) || text[klen] == '\0') {
		snprintf(err, errlen, "'%s': expected KEY=VALUE (or !=, <=, >=, <, >)", text);
		return -1;
	}
	memcpy(e->key, text, klen);
	e->key[klen] = '\0';
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t olen = strlen(ops[i]);
		if (strncmp(text + klen, ops[i], olen) != 0)
			continue;
		e->op = codes[i];
		errno = 0;
		e->value = strtod(text + klen + olen, &end);
		if (end == text + klen + olen || *end != '\0' || errno != 0 ||
		    !isfinite(e->value)) {
			snprintf(err, errlen, "'%s': the value must be a number", text);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "'%s': unknown operator", text);
	return -1;
}

static int add(struct expect_set *s, const char *text, int implicit, char *err, size_t errlen)
{
	struct expectation *e = &s->e[s->n];
	struct result probe;
	double v;
	char why[8];
	size_t klen;

	memset(e, 0, sizeof(*e));
	if (split(text, e, err, errlen) < 0)
		return -1;
	memset(&probe, 0, sizeof(probe)); /* every key of a zero result is known or unknown */
	if (!implicit && expect_lookup(&probe, e->key, &v, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "'%s': unknown key '%s' (see the usage)", text, e->key);
		return -1;
	}
	klen = strlen(e->key);
	if (e->op == EX_EQ && klen > 3 && strcmp(e->key + klen - 3, "_ms") == 0)
		e->op = EX_LE;
	if (e->op == EX_EQ && strstr(e->key, "_per_s") != NULL)
		e->op = EX_GE;
	snprintf(e->text, sizeof(e->text), "%s%s", text, implicit ? " (implicit)" : "");
	e->implicit = implicit;
	s->n++;
	return 0;
}

int expect_parse(struct expect_set *s, const char *const *texts, int n, char *err, size_t errlen)
{
	int about_failed = 0, about_some = 0, about_mismatch = 0;

	memset(s, 0, sizeof(*s));
	if (n > EXPECT_MAX - 2) {
		snprintf(err, errlen, "too many expectations");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *key;
		if (add(s, texts[i], 0, err, errlen) < 0)
			return -1;
		key = s->e[s->n - 1].key;
		about_failed |= strcmp(key, "failed") == 0;
		about_mismatch |= strcmp(key, "echo_mismatch") == 0;
		if (strncmp(key, "failed.", 7) == 0) {
			int ph = phase_parse(key + 7),
			    kind = ph < 0 ? fail_kind_parse(key + 7) : -1;
			about_some = 1;
			if (ph >= 0)
				s->named_phase[ph] = 1;
			else if (kind >= 0 && kind < FAIL_KINDS)
				s->named_kind[kind] = 1;
		}
	}
	/* About some failures only: the others are still expected not to happen. */
	if (!about_failed && add(s, about_some ? UNNAMED "=0" : "failed=0", 1, err, errlen) < 0)
		return -1;
	if (!about_mismatch && add(s, "echo_mismatch=0", 1, err, errlen) < 0)
		return -1;
	return 0;
}

static int holds(enum expect_op op, double a, double b)
{
	switch (op) {
	case EX_EQ:
		return a == b;
	case EX_NE:
		return a != b;
	case EX_LE:
		return a <= b;
	case EX_GE:
		return a >= b;
	case EX_LT:
		return a < b;
	case EX_GT:
		return a > b;
	}
	return 0;
}

/* Failures of a phase and a kind that no failed.PHASE / failed.KIND expectation names. */
static double failed_unnamed(const struct expect_set *s, const struct result *r)
{
	uint64_t n = 0;

	for (int p = 0; p < PHASE_N; p++) {
		for (int k = 0; k < FAIL_KINDS && !s->named_phase[p]; k++)
			n += s->named_kind[k] ? 0 : r->fail[p][k];
	}
	return (double)n;
}

void expect_eval(struct expect_set *s, const struct result *r)
{
	for (int i = 0; i < s->n; i++) {
		struct expectation *e = &s->e[i];
		int rc = 0;
		if (e->implicit && strcmp(e->key, UNNAMED) == 0)
			e->observed = failed_unnamed(s, r);
		else
			rc = expect_lookup(r, e->key, &e->observed, e->why, sizeof(e->why));
		if (rc != 0)
			e->outcome = EX_UNKNOWN;
		else
			e->outcome = holds(e->op, e->observed, e->value) ? EX_OK : EX_VIOLATED;
	}
}

int expect_status(const struct expect_set *s)
{
	int unknown = 0;

	for (int i = 0; i < s->n; i++) {
		if (s->e[i].outcome == EX_VIOLATED)
			return 1;
		unknown |= s->e[i].outcome == EX_UNKNOWN;
	}
	return unknown ? 3 : 0;
}
