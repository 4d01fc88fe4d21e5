#include "scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[SCEN_ALL] = {
    "echo", "close", "half-close", "reset", "idle", "silent", "crash", "vanish", "mixed",
};

const char *scenario_name(int s)
{
	return s >= 0 && s < SCEN_ALL ? names[s] : "?";
}

int scenario_parse(const char *name)
{
	for (int i = 0; i < SCEN_ALL; i++) {
		if (strcmp(name, names[i]) == 0)
			return i;
	}
	return -1;
}

int scenario_holds(int s)
{
	return s == SCEN_IDLE || s == SCEN_SILENT || s == SCEN_VANISH;
}

int scenario_churns(int s)
{
	return s == SCEN_CLOSE || s == SCEN_HALF_CLOSE || s == SCEN_RESET || s == SCEN_CRASH;
}

int scenario_kills(int s)
{
	return s == SCEN_CRASH || s == SCEN_VANISH;
}

/* nginx's smooth weighted round robin: each step every scenario gains its weight, the
 * largest current value is picked and loses the total. Over `total` steps each scenario
 * is picked exactly `weight` times, evenly spread. */
static void mix_build(struct mix *m)
{
	int current[SCEN_N] = {0};

	for (int i = 0; i < m->total; i++) {
		int best = -1;
		for (int s = 0; s < SCEN_N; s++) {
			if (m->weight[s] == 0)
				continue;
			current[s] += m->weight[s];
			if (best < 0 || current[s] > current[best])
				best = s;
		}
		current[best] -= m->total;
		m->table[i] = (uint8_t)best;
	}
}

void mix_single(struct mix *m, int s)
{
	memset(m, 0, sizeof(*m));
	m->weight[s] = 1;
	m->total = 1;
	mix_build(m);
}

static int mix_item(char *item, struct mix *m, char *err, size_t errlen)
{
	char *eq = strchr(item, '='), *end;
	long w;
	int s;

	if (eq == NULL) {
		snprintf(err, errlen, "'%s': expected SCENARIO=WEIGHT", item);
		return -1;
	}
	*eq = '\0';
	s = scenario_parse(item);
	if (s < 0 || s >= SCEN_N) {
		snprintf(err, errlen,
			 "'%s' is not a scenario a mix can hold (echo, close, "
			 "half-close, reset, idle, silent, crash, vanish)",
			 item);
		return -1;
	}
	errno = 0;
	w = strtol(eq + 1, &end, 10);
	if (eq[1] < '0' || eq[1] > '9' || *end != '\0' || errno != 0 || w > MIX_MAX) {
		snprintf(err, errlen, "%s: weight must be a whole number from 0 to %d", item,
			 MIX_MAX);
		return -1;
	}
	if (m->weight[s] != 0) {
		snprintf(err, errlen, "%s given twice", item);
		return -1;
	}
	m->weight[s] = (int)w;
	m->total += (int)w;
	return 0;
}

int mix_parse(const char *spec, struct mix *m, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *item;

	memset(m, 0, sizeof(*m));
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "mix too long");
		return -1;
	}
	strcpy(buf, spec);
	for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		if (mix_item(item, m, err, errlen) < 0)
			return -1;
	}
	if (m->total == 0 || m->total > MIX_MAX) {
		snprintf(err, errlen, "the weights must add up to 1 .. %d", MIX_MAX);
		return -1;
	}
	mix_build(m);
	return 0;
}

int mix_runs(const struct mix *m, int s)
{
	return s >= 0 && s < SCEN_N && m->weight[s] > 0;
}

int mix_pick(const struct mix *m, uint64_t id)
{
	return m->table[id % (uint64_t)m->total];
}

void mix_format(const struct mix *m, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int s = 0; s < SCEN_N && used < len; s++) {
		if (m->weight[s] == 0)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s=%d", used ? "," : "", names[s],
				 m->weight[s]);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte `off` of message (id, seq): byte off % 8 of the hash of the message key and the
 * 8-byte word number, so any offset can be generated on its own. */
static uint64_t pattern_key(uint64_t id, uint64_t seq)
{
	return splitmix64(splitmix64(id) ^ (seq * 0xd1342543de82ef95ULL));
}

void pattern_fill(uint64_t id, uint64_t seq, size_t off, unsigned char *buf, size_t n)
{
	uint64_t key = pattern_key(id, seq), word = splitmix64(key + off / 8);

	for (size_t i = 0; i < n; i++, off++) {
		if (off % 8 == 0)
			word = splitmix64(key + off / 8);
		buf[i] = (unsigned char)(word >> (8 * (off % 8)));
	}
}

size_t pattern_check(uint64_t id, uint64_t seq, size_t off, const unsigned char *buf, size_t n)
{
	uint64_t key = pattern_key(id, seq), word = splitmix64(key + off / 8);

	for (size_t i = 0; i < n; i++, off++) {
		if (off % 8 == 0)
			word = splitmix64(key + off / 8);
		if (buf[i] != (unsigned char)(word >> (8 * (off % 8))))
			return i;
	}
	return n;
}
