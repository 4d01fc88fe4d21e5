#include "schedule.h"
#include "conf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const arrivals_names[ARRIVALS_N] = {"fixed", "poisson"};

int arrivals_parse(const char *s)
{
	for (int i = 0; i < ARRIVALS_N; i++) {
		if (strcmp(s, arrivals_names[i]) == 0)
			return i;
	}
	return -1;
}

const char *arrivals_name(int a)
{
	return a >= 0 && a < ARRIVALS_N ? arrivals_names[a] : "?";
}

/* splitmix64's finaliser: a well-mixed 64-bit value from any input. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Uniform in (0, 1]: 53 random bits, never 0 (log(0) would be infinite). */
static double uniform(uint64_t h)
{
	return (double)((h >> 11) + 1) * 0x1p-53;
}

double sched_phase_us(double rate, uint64_t id)
{
	return (1.0 - uniform(mix64(id ^ 0x7068617365ULL))) * 1e6 / rate;
}

double sched_gap_us(const struct sched *s, uint64_t k)
{
	if (s->arrivals == ARRIVALS_POISSON)
		return -log(uniform(mix64(mix64(s->id) ^ k))) * 1e6 / s->rate;
	return 1e6 / s->rate;
}

void sched_init(struct sched *s, double rate, int arrivals, uint64_t id, int64_t start_us)
{
	s->rate = rate;
	s->arrivals = arrivals;
	s->id = id;
	s->base_us = (double)start_us + sched_phase_us(rate, id);
}

void sched_first(const struct sched *s, struct sched_cursor *c)
{
	c->n = 0;
	c->due_us = s->base_us;
}

void sched_next(const struct sched *s, struct sched_cursor *c)
{
	if (s->arrivals == ARRIVALS_POISSON)
		c->due_us += sched_gap_us(s, c->n);
	else
		c->due_us = s->base_us + (double)(c->n + 1) * 1e6 / s->rate;
	c->n++;
}

/* ---- stages ---- */

static int stage_fail(char *err, size_t errlen, const char *what, const char *tok)
{
	snprintf(err, errlen, "'%s': %s", tok, what);
	return -1;
}

/* One "DURATION:TARGET" into stage i. */
static int stage_parse(struct stages *s, char *tok, int64_t max, char *err, size_t errlen)
{
	static const struct conf_key dur = {
	    "stage", CONF_DURATION, {NULL, NULL}, 1, 7 * 24 * 3600 * 1000LL, "", "", NULL, 0, 0};
	char *colon = strchr(tok, ':'), *end, reason[CONF_ERR_MAX];
	int64_t ms = 0;
	long long target;

	if (colon == NULL)
		return stage_fail(err, errlen, "expected DURATION:TARGET, e.g. 10s:1000", tok);
	*colon = '\0';
	if (conf_parse_value(&dur, &ms, tok, reason, sizeof(reason)) < 0) {
		*colon = ':';
		return stage_fail(err, errlen, reason, tok);
	}
	*colon = ':';
	if (colon[1] < '0' || colon[1] > '9')
		return stage_fail(err, errlen, "the target must be a whole number", tok);
	target = strtoll(colon + 1, &end, 10);
	if (*end != '\0' || target > max)
		return stage_fail(err, errlen, "the target must be a whole number in range", tok);
	s->end_ms[s->n] = (s->n > 0 ? s->end_ms[s->n - 1] : 0) + ms;
	s->target[s->n] = (double)target;
	s->n++;
	return 0;
}

int stages_parse(struct stages *s, const char *text, int64_t max, char *err, size_t errlen)
{
	char buf[2048], *rest = buf, *tok;

	memset(s, 0, sizeof(*s));
	if (strlen(text) >= sizeof(buf))
		return stage_fail(err, errlen, "too long", "...");
	strcpy(buf, text);
	while ((tok = strsep(&rest, ",")) != NULL) {
		if (s->n == STAGES_MAX)
			return stage_fail(err, errlen, "too many stages", tok);
		if (stage_parse(s, tok, max, err, errlen) < 0)
			return -1;
	}
	return 0;
}

double stages_at(const struct stages *s, double from, double t_ms)
{
	double start = 0, prev = from;

	for (int i = 0; i < s->n; i++) {
		double end = (double)s->end_ms[i];
		if (t_ms < end)
			return prev + (s->target[i] - prev) * (t_ms - start) / (end - start);
		start = end;
		prev = s->target[i];
	}
	return prev;
}

double stages_area(const struct stages *s, double from, double t_ms)
{
	double start = 0, prev = from, area = 0;

	for (int i = 0; i < s->n && start < t_ms; i++) {
		double end = (double)s->end_ms[i], until = t_ms < end ? t_ms : end;
		double at = stages_at(s, from, until);
		area += (prev + at) / 2 * (until - start); /* linear: a trapezoid */
		start = end;
		prev = s->target[i];
	}
	if (t_ms > start)
		area += prev * (t_ms - start); /* the last target holds */
	return area;
}

double stages_when(const struct stages *s, double from, double area)
{
	double total = (double)stages_total_ms(s), lo = 0, hi = total;
	double last = s->n > 0 ? s->target[s->n - 1] : from, at_end = stages_area(s, from, total);

	if (area > at_end)
		return last > 0 ? total + (area - at_end) / last : -1;
	for (int i = 0; i < 64; i++) { /* the area only grows with t: bisection */
		double mid = (lo + hi) / 2;
		if (stages_area(s, from, mid) < area)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

int64_t stages_total_ms(const struct stages *s)
{
	return s->n > 0 ? s->end_ms[s->n - 1] : 0;
}

double stages_max(const struct stages *s, double from)
{
	double m = from;

	for (int i = 0; i < s->n; i++)
		m = s->target[i] > m ? s->target[i] : m;
	return m;
}
