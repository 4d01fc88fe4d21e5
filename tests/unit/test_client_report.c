/* client/report.c, result.c, json.c: a result written as JSON and read back is the same
 * result; merging two read-back results equals merging the originals; the JSON reader
 * takes what the writer writes and rejects malformed text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/expect.h"
#include "client/json.h"
#include "client/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct result *sample(uint64_t seed)
{
	struct result *r = malloc(sizeof(*r));

	assert_non_null(r);
	result_init(r);
	r->attempted = 100 + seed;
	r->connected = 99 + seed;
	r->established = 98 + seed;
	r->completed = 90 + seed;
	r->failed = 0;
	r->cancelled = 1;
	r->closed_by_server = 2;
	r->echo_mismatch = seed;
	r->messages = 1000 * seed;
	r->reconnects = 30 + seed;
	r->interrupted = 11 * seed + 1;
	r->bytes_sent = 64000 * seed;
	r->bytes_received = 64000 * seed + 5;
	r->by_scenario[SCEN_ECHO] = 50;
	r->by_scenario[SCEN_RESET] = 50 + seed;
	r->by_scenario[SCEN_CRASH] = 5;
	r->by_scenario[SCEN_VANISH] = 7;
	/* crashes at T+seed ms and T+seed ms+4 ms; vanishes at T+2 s */
	result_dead(&r->crashed, 3, 1700000000000000 + (int64_t)seed * 1000);
	result_dead(&r->crashed, 2, 1700000000004000 + (int64_t)seed * 1000);
	result_dead(&r->vanished, 7, 1700000002000000);
	r->dropped_from_server = 7 + seed;
	r->dropped_to_server = 9;
	r->elapsed_us = 1000000 + (int64_t)seed;
	result_fail(r, PHASE_CONNECT, ECONNREFUSED);
	result_fail(r, PHASE_FIRST_REPLY, FAIL_DEADLINE);
	result_fail(r, PHASE_CLOSE, FAIL_EOF);
	result_fail(r, PHASE_ECHO, FAIL_MISMATCH);
	for (uint64_t i = 1; i < 5000; i += 7)
		hist_record(&r->rtt_us, i * (seed + 1));
	hist_record(&r->connect_us, 123);
	hist_record(&r->fin_to_fin_us, 1u << 30);
	r->client.visible = 1;
	r->client.c.total = 10;
	r->client.c.state[CENSUS_TIME_WAIT] = 10;
	r->client.c.timer[CENSUS_TIME_WAIT][CENSUS_TIMER_TIME_WAIT] =
	    (struct census_timer_sum){.count = 10, .max_expiry_ms = 59000, .max_retrans = 0};
	r->server.visible = seed % 2;
	r->server.unseen = r->server.visible ? UNSEEN_UNKNOWN : UNSEEN_OTHER_LISTENER;
	r->server.port = 7000;
	r->client.port = 7000;
	r->server.c.total = 1 + seed;
	r->server.c.state[CENSUS_LISTEN] = 1;
	r->server.c.state[CENSUS_CLOSE_WAIT] = seed;
	r->server.c.accept_backlog = 128;
	r->kernel.available = 1;
	r->kernel.k.tcpext_found = (1U << KSTAT_NCOUNTERS) - 1;
	r->kernel.k.tcpext[KSTAT_ABORT_ON_DATA] = 50 + seed;
	r->kernel.k.tcpext[KSTAT_ABORT_ON_CLOSE] = seed;
	r->kernel.k.sockstat_found = (1U << KSTAT_NSOCKSTAT) - 1;
	r->kernel.k.sockstat[KSTAT_TCP_ORPHAN] = 10 * seed;
	r->kernel.k.sockstat[KSTAT_TCP_TW] = 1000 - seed;
	r->kernel.limits.found = 1U << KSTAT_MAX_ORPHANS;
	r->kernel.limits.v[KSTAT_MAX_ORPHANS] = 4096 * seed;
	r->kernel.inuse6_found = 1;
	r->kernel.inuse6 = 100 + seed;
	return r;
}

static char *to_json(const struct result *r)
{
	struct run_info info = {
	    .server = "127.0.0.1:1", .scenario = "echo", .connections = 1, .procs = 1};
	struct jw w;
	char *text;

	jw_init(&w);
	report_json(&w, &info, r, NULL, 0, NULL);
	assert_non_null(jw_finish(&w));
	text = strdup(jw_finish(&w));
	jw_free(&w);
	return text;
}

static struct result *from_json(const char *text)
{
	struct result *r = malloc(sizeof(*r));
	struct run_info info;
	char err[256];
	struct jnode *doc = json_parse(text, err, sizeof(err));

	assert_non_null(r);
	if (doc == NULL)
		fail_msg("parse: %s", err);
	if (report_read(r, &info, doc, err, sizeof(err)) < 0)
		fail_msg("read: %s", err);
	json_free(doc);
	return r;
}

/* Equal in everything the JSON carries (the live progress fields are not carried). */
static void assert_same(const struct result *a, const struct result *b)
{
	size_t upto = offsetof(struct result, open_now);

	assert_memory_equal(a, b, upto);
	assert_memory_equal(&a->connect_us, &b->connect_us, sizeof(struct hist) * 4);
	assert_int_equal(a->client.visible, b->client.visible);
	if (a->client.visible)
		assert_memory_equal(a->client.c.state, b->client.c.state,
				    sizeof(a->client.c.state));
	assert_int_equal(a->server.visible, b->server.visible);
	assert_int_equal(a->server.unseen, b->server.unseen);
	assert_int_equal(a->server.port, b->server.port);
	assert_int_equal(a->client.port, b->client.port);
	if (a->server.visible) {
		assert_memory_equal(a->server.c.state, b->server.c.state,
				    sizeof(a->server.c.state));
		assert_memory_equal(a->server.c.timer, b->server.c.timer,
				    sizeof(a->server.c.timer));
		assert_int_equal(a->server.c.accept_backlog, b->server.c.accept_backlog);
	}
	assert_int_equal(a->kernel.available, b->kernel.available);
	assert_int_equal(a->kernel.k.tcpext_found, b->kernel.k.tcpext_found);
	assert_memory_equal(a->kernel.k.tcpext, b->kernel.k.tcpext, sizeof(a->kernel.k.tcpext));
	assert_int_equal(a->kernel.k.sockstat_found, b->kernel.k.sockstat_found);
	assert_memory_equal(a->kernel.k.sockstat, b->kernel.k.sockstat,
			    sizeof(a->kernel.k.sockstat));
	assert_int_equal(a->kernel.limits.found, b->kernel.limits.found);
	assert_memory_equal(a->kernel.limits.v, b->kernel.limits.v, sizeof(a->kernel.limits.v));
	assert_int_equal(a->kernel.inuse6_found, b->kernel.inuse6_found);
	assert_int_equal(a->kernel.inuse6, b->kernel.inuse6);
}

/* The value given to counter i of result_fields[] (distinct, and distinct from any other
 * figure of the report) and to histogram i. */
static uint64_t field_value(size_t i)
{
	return 7000003 + 1000 * (uint64_t)i;
}

/* Sets every counter of result_fields[] and records one sample in every histogram. */
static struct result *every_counter(void)
{
	struct result *r = malloc(sizeof(*r));

	assert_non_null(r);
	result_init(r);
	r->elapsed_us = 1000000;
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		char *p = (char *)r + f->offset;
		if (f->kind == RK_DEAD)
			result_dead((struct dead_peers *)p, field_value(i), 1700000000000000);
		else
			*(uint64_t *)p = field_value(i);
		assert_true(result_field_value(r, f) == field_value(i));
	}
	for (size_t i = 0; i < result_nhists; i++)
		hist_record(result_hist_at(r, &result_hists[i]), 1000 * (i + 1));
	return r;
}

/* One walk of the counter table: every counter is written to the JSON under its group,
 * read back, merged (summed), shown in the table and usable as an --expect key; every
 * histogram is written, read back exactly, merged, shown and has its latency keys. A
 * counter added to the table without its JSON, merge or key fails here. */
static void test_counter_table(void **state)
{
	struct result *a = every_counter(), *b, *sum = malloc(sizeof(*sum));
	struct run_info info = {.server = "s", .scenario = "echo"};
	char *text = to_json(a), *table = NULL, why[128];
	size_t tlen = 0;
	FILE *f = open_memstream(&table, &tlen);

	(void)state;
	assert_non_null(f);
	report_table(f, &info, a, NULL);
	fclose(f);
	b = from_json(text);
	result_init(sum);
	sum->parts = 0;
	result_merge(sum, a);
	result_merge(sum, b);
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *k = &result_fields[i];
		uint64_t v = field_value(i);
		char num[32], member[96];
		double got = -1;
		snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
		snprintf(member, sizeof(member), "\"%s\":%s", k->json, num);
		if (result_field_value(sum, k) != (k->group == RG_LIVE ? v : 2 * v))
			fail_msg("%s: not merged", k->key);
		if (k->group == RG_LIVE) /* progress: summed only */
			continue;
		if (result_field_value(b, k) != v)
			fail_msg("%s: not read back from the JSON", k->key);
		if (k->kind == RK_DEAD)
			snprintf(member, sizeof(member), "\"%s\":{\"count\":%s", k->json, num);
		if (strstr(text, member) == NULL)
			fail_msg("%s: %s not in the JSON", k->key, member);
		if (strstr(table, num) == NULL)
			fail_msg("%s: %s not in the table", k->key, num);
		if (expect_lookup(sum, k->key, &got, why, sizeof(why)) != 0 ||
		    got != 2.0 * (double)v)
			fail_msg("%s: not an --expect key of its value", k->key);
	}
	for (size_t i = 0; i < result_nhists; i++) {
		const struct result_hist *h = &result_hists[i];
		char key[64];
		double got = -1;
		assert_memory_equal(result_hist_of(a, h), result_hist_of(b, h),
				    sizeof(struct hist));
		assert_int_equal(hist_count(result_hist_of(sum, h)), 2);
		assert_non_null(strstr(table, h->label));
		snprintf(key, sizeof(key), "%s_max_ms", h->name);
		assert_int_equal(expect_lookup(sum, key, &got, why, sizeof(why)), 0);
		assert_true(got > 0);
	}
	free(table);
	free(text);
	free(a);
	free(b);
	free(sum);
}

/* A histogram whose sum needs more than 64 bits goes through the JSON and a merge exactly:
 * the reason json.c is not a JSON library that clamps or refuses such numbers (json.h). */
static void test_hist_sum_above_u64(void **state)
{
	struct result *a = sample(1), *b, *twice = malloc(sizeof(*twice));
	char *text;

	(void)state;
	hist_record_n(&a->server_close_us, UINT64_MAX - 7, 5); /* sum about 5 * 2^64 */
	text = to_json(a);
	assert_non_null(strstr(text, "\"sum\":92233720368547758040")); /* 5 * (2^64 - 8) */
	b = from_json(text);
	assert_same(a, b);
	result_init(twice);
	twice->parts = 0;
	result_merge(twice, a);
	result_merge(twice, b);
	assert_int_equal(hist_count(&twice->server_close_us), 10);
	assert_true(twice->server_close_us.sum_hi == 9 &&
		    twice->server_close_us.sum_lo == (uint64_t)0 - 80);
	free(text);
	free(a);
	free(b);
	free(twice);
}

static void test_round_trip(void **state)
{
	struct result *a = sample(3), *b;
	char *text = to_json(a);

	(void)state;
	b = from_json(text);
	assert_same(a, b);
	free(text);
	free(a);
	free(b);
}

/* merge(read(json(A)), read(json(B))) == merge(A, B), exactly. */
static void test_merge_exact(void **state)
{
	struct result *a = sample(1), *b = sample(2), *direct = malloc(sizeof(*direct));
	char *ta = to_json(a), *tb = to_json(b);
	struct result *ra = from_json(ta), *rb = from_json(tb);

	(void)state;
	result_init(direct);
	direct->parts = 0;
	result_merge(direct, a);
	result_merge(direct, b);
	result_merge(ra, rb);
	assert_same(direct, ra);
	assert_int_equal(direct->attempted, a->attempted + b->attempted);
	assert_int_equal(direct->failed, 8);
	assert_int_equal(direct->fail[PHASE_CONNECT][ECONNREFUSED], 2);
	assert_int_equal(hist_count(&direct->rtt_us), hist_count(&a->rtt_us) * 2);
	assert_int_equal(direct->elapsed_us, b->elapsed_us);
	assert_int_equal(direct->parts, 2);
	/* clients summed; the one server seen twice: the larger count per state */
	assert_int_equal(direct->client.c.state[CENSUS_TIME_WAIT], 20);
	assert_int_equal(direct->server.c.state[CENSUS_LISTEN], 1);
	/* dead peers: counts summed, the earliest first and the latest last */
	assert_int_equal(direct->crashed.count, 10);
	assert_true(direct->crashed.first_unix_us == 1700000000001000);
	assert_true(direct->crashed.last_unix_us == 1700000000006000);
	assert_int_equal(direct->vanished.count, 14);
	assert_true(direct->vanished.first_unix_us == 1700000002000000);
	assert_int_equal(direct->dropped_from_server, 8 + 9);
	assert_int_equal(direct->reconnects, 31 + 32);
	assert_int_equal(direct->interrupted, 12 + 23);
	/* kernel: deltas summed, sockstat the largest, limits the smallest */
	assert_true(direct->kernel.available);
	assert_int_equal(direct->kernel.k.tcpext[KSTAT_ABORT_ON_DATA], 51 + 52);
	assert_int_equal(direct->kernel.k.tcpext[KSTAT_ABORT_ON_CLOSE], 3);
	assert_int_equal(direct->kernel.k.sockstat[KSTAT_TCP_ORPHAN], 20);
	assert_int_equal(direct->kernel.k.sockstat[KSTAT_TCP_TW], 999);
	assert_int_equal(direct->kernel.limits.v[KSTAT_MAX_ORPHANS], 4096);
	free(ta);
	free(tb);
	free(a);
	free(b);
	free(ra);
	free(rb);
	free(direct);
}

/* A figure one merged result lacks is missing from the merge (never a partial sum); a
 * result without the counters makes the whole merge's unavailable. */
static void test_kernel_merge(void **state)
{
	struct result *a = sample(1), *b = sample(2), *c = sample(3);

	(void)state;
	b->kernel.k.tcpext_found &= ~(1U << KSTAT_LISTEN_DROPS);
	b->kernel.limits.found = 0; /* run in a namespace: no limits */
	result_merge(a, b);
	assert_true(a->kernel.available);
	assert_false(a->kernel.k.tcpext_found & (1U << KSTAT_LISTEN_DROPS));
	assert_true(a->kernel.k.tcpext_found & (1U << KSTAT_ABORT_ON_DATA));
	assert_int_equal(a->kernel.limits.found, 0);
	memset(&c->kernel, 0, sizeof(c->kernel));
	result_merge(a, c);
	assert_false(a->kernel.available);
	free(a);
	free(b);
	free(c);
}

/* The table's kernel block: every counter, sockstat, the limits; merged says how. */
static void test_kernel_table(void **state)
{
	struct result *r = sample(2);
	struct run_info info = {.server = "h:1", .scenario = "reset", .connections = 1};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	report_table(f, &info, r, NULL);
	info.merged = 2;
	memset(&r->kernel, 0, sizeof(r->kernel));
	report_table(f, &info, r, NULL);
	fclose(f);
	assert_non_null(strstr(text, "kernel (this network namespace, every process in it): "
				     "deltas over the run"));
	assert_non_null(strstr(text, "  TCPAbortOnClose 2  TCPAbortOnData 52"));
	assert_non_null(strstr(text, "ListenDrops 0\n"));
	assert_non_null(strstr(text, "  sockstat: inuse 102 (IPv4 0, IPv6 102)  tw 998\n"));
	assert_non_null(strstr(text, "  host-wide: orphan 20 (tcp_max_orphans 8192)  alloc 0  "
				     "mem 0 pages\n"));
	assert_non_null(strstr(text, "kernel (this network namespace): not in every merged"));
	free(text);
	free(r);
}

/* Deaths merge whatever the order, and an empty side changes nothing. */
static void test_dead_merge(void **state)
{
	struct dead_peers a = {0}, b = {0}, none = {0};

	(void)state;
	result_dead(&a, 1, 500);
	result_dead(&b, 2, 900);
	result_dead(&b, 1, 100);
	result_dead_merge(&a, &none);
	assert_int_equal(a.count, 1);
	assert_true(a.first_unix_us == 500 && a.last_unix_us == 500);
	result_dead_merge(&none, &a);
	assert_true(none.count == 1 && none.first_unix_us == 500);
	result_dead_merge(&a, &b);
	assert_int_equal(a.count, 4);
	assert_true(a.first_unix_us == 100 && a.last_unix_us == 900);
	assert_true(result_unix_us() > 1600000000000000); /* the wall clock, in us */
}

/* A result written before crash and vanish existed (no "dead_peers", no crash or vanish
 * in "by_scenario") still reads, with zero deaths. */
static void cut(char *text, const char *what)
{
	char *p = strstr(text, what);

	assert_non_null(p);
	memmove(p, p + strlen(what), strlen(p + strlen(what)) + 1);
}

/* Removes `key` and the object after it. */
static void cut_object(char *text, const char *key)
{
	char *p = strstr(text, key), *e;
	int depth = 0;

	assert_non_null(p);
	for (e = p + strlen(key); *e != '\0'; e++) {
		depth += *e == '{';
		depth -= *e == '}';
		if (depth == 0)
			break;
	}
	assert_true(*e == '}');
	memmove(p, e + 1, strlen(e + 1) + 1);
}

static void test_read_older(void **state)
{
	struct result *a = sample(2), *b;
	char *text;

	(void)state;
	memset(&a->crashed, 0, sizeof(a->crashed));
	memset(&a->vanished, 0, sizeof(a->vanished));
	a->by_scenario[SCEN_CRASH] = a->by_scenario[SCEN_VANISH] = 0;
	a->dropped_from_server = a->dropped_to_server = 0;
	a->reconnects = a->interrupted = 0;
	text = to_json(a);
	cut(text, ",\"reconnects\":0,\"interrupted\":0"); /* before --reconnect */
	cut(text, ",\"crash\":0,\"vanish\":0");
	cut(text, "\"dead_peers\":{\"crash\":{\"count\":0,\"first_unix_us\":0,\"last_unix_us\":0},"
		  "\"vanish\":{\"count\":0,\"first_unix_us\":0,\"last_unix_us\":0},"
		  "\"dropped_from_server\":0,\"dropped_to_server\":0},");
	b = from_json(text);
	assert_same(a, b);
	free(text);
	text = to_json(a);
	cut_object(text, ",\"kernel\":");
	free(b);
	b = from_json(text); /* written before the kernel counters: not available */
	assert_false(b->kernel.available);
	free(text);
	free(a);
	free(b);
}

static void test_fail_kinds(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(fail_kind_name(ECONNREFUSED, buf, sizeof(buf)), "ECONNREFUSED");
	assert_string_equal(fail_kind_name(FAIL_DEADLINE, buf, sizeof(buf)), "deadline");
	assert_int_equal(fail_kind_parse("EADDRNOTAVAIL"), EADDRNOTAVAIL);
	assert_int_equal(fail_kind_parse("mismatch"), FAIL_MISMATCH);
	assert_int_equal(fail_kind_parse("EWHATEVER"), -1);
	assert_int_equal(phase_parse("first_reply"), PHASE_FIRST_REPLY);
	assert_int_equal(phase_parse("nope"), -1);
}

static void test_json_reader(void **state)
{
	const char *good = " {\"a\": [1, 2.5, -3, true, false, null], \"s\": \"x\\\"\\n\\u0041\","
			   " \"big\": 18446744073709551615, \"o\": {}} ";
	const char *bad[] = {"",      "{",	     "{\"a\" 1}", "[1,]", "{\"a\":1} x",
			     "\"abc", "{\"a\":tru}", "[\"\\q\"]"};
	char err[128];
	struct jnode *n = json_parse(good, err, sizeof(err));
	uint64_t big;

	(void)state;
	assert_non_null(n);
	assert_string_equal(json_get(n, "s")->str, "x\"\nA");
	assert_int_equal(json_get_u64(n, "big", &big), 0);
	assert_true(big == UINT64_MAX);
	assert_int_equal(json_get(n, "a")->child->next->type, J_NUM);
	assert_int_equal(json_get_u64(n, "s", &big), -1);
	assert_null(json_get(n, "missing"));
	json_free(n);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = json_parse(bad[i], err, sizeof(err));
		if (n != NULL)
			fail_msg("accepted bad JSON: %s", bad[i]);
		assert_true(strlen(err) > 0);
	}
}

static void test_read_rejects(void **state)
{
	const char *docs[] = {"{}", "{\"version\":2}", "[1]"};
	struct result *r = malloc(sizeof(*r));
	struct run_info info;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct jnode *doc = json_parse(docs[i], err, sizeof(err));
		assert_non_null(doc);
		assert_int_equal(report_read(r, &info, doc, err, sizeof(err)), -1);
		json_free(doc);
	}
	free(r);
}

/* Why a census was not counted: said in words with its port, carried through JSON, kept
 * by a merge of results none of which counted it; an unknown reason is refused. */
static void test_census_unseen(void **state)
{
	struct census_view v = {.unseen = UNSEEN_NO_LISTENER, .port = 7000}, back;
	struct result *a = sample(2), *b = sample(2);
	struct jw w;
	struct jnode *doc;
	char buf[160], err[256];

	(void)state;
	assert_string_equal(census_unseen_text(&v, buf, sizeof(buf)),
			    "nothing listens on port 7000 here");
	v.unseen = UNSEEN_OTHER_LISTENER;
	assert_non_null(strstr(census_unseen_text(&v, buf, sizeof(buf)), "another listener"));
	v.unseen = UNSEEN_UNKNOWN; /* an older result */
	assert_non_null(strstr(census_unseen_text(&v, buf, sizeof(buf)), "another host"));
	v.unseen = UNSEEN_NO_LISTENER;
	jw_init(&w);
	report_census_json(&w, NULL, &v);
	assert_string_equal(jw_finish(&w),
			    "{\"visible\":false,\"unseen\":\"no_listener\",\"port\":7000}");
	doc = json_parse(jw_finish(&w), err, sizeof(err));
	assert_int_equal(report_census_read(&back, doc, err, sizeof(err)), 0);
	assert_int_equal(back.unseen, UNSEEN_NO_LISTENER);
	assert_int_equal(back.port, 7000);
	json_free(doc);
	jw_free(&w);
	doc = json_parse("{\"visible\":false,\"unseen\":\"nowhere\"}", err, sizeof(err));
	assert_int_equal(report_census_read(&back, doc, err, sizeof(err)), -1);
	json_free(doc);
	/* merged: neither counted, the reason stays */
	b->server.unseen = UNSEEN_NO_LISTENER;
	result_init(a);
	a->parts = 0;
	result_merge(a, b);
	result_merge(a, b);
	assert_false(a->server.visible);
	assert_int_equal(a->server.unseen, UNSEEN_NO_LISTENER);
	assert_int_equal(a->server.port, 7000);
	free(a);
	free(b);
}

/* /proc/net/sockstat6's TCP6 line: the IPv6 sockets that sockstat's inuse leaves out. */
static void test_sockstat6(void **state)
{
	uint64_t n = 0;
	struct result *a = sample(1), *b = sample(2);
	double v;
	char why[64];

	(void)state;
	assert_int_equal(kernel_parse_sockstat6("TCP6: inuse 345\nUDP6: inuse 2\n", &n), 0);
	assert_int_equal(n, 345);
	assert_int_equal(kernel_parse_sockstat6("UDP6: inuse 2\nTCP6: inuse 7", &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(kernel_parse_sockstat6("UDP6: inuse 2\n", &n), -1);
	assert_int_equal(kernel_parse_sockstat6("TCP6: inuse x\n", &n), -1);
	assert_int_equal(kernel_parse_sockstat6("", &n), -1);
	/* merged: the largest, like the other sockstat figures; the key reads it */
	kernel_merge(&a->kernel, &b->kernel, 0);
	assert_true(a->kernel.inuse6_found);
	assert_int_equal(a->kernel.inuse6, 102);
	assert_int_equal(kernel_lookup(&a->kernel, "sockstat6.inuse", &v, why, sizeof(why)), 0);
	assert_true(v == 102);
	b->kernel.inuse6_found = 0; /* one result without it: unknown, not a partial figure */
	kernel_merge(&a->kernel, &b->kernel, 0);
	assert_false(a->kernel.inuse6_found);
	assert_int_equal(kernel_lookup(&a->kernel, "sockstat6.inuse", &v, why, sizeof(why)), 1);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),	       cmocka_unit_test(test_merge_exact),
	    cmocka_unit_test(test_fail_kinds),	       cmocka_unit_test(test_json_reader),
	    cmocka_unit_test(test_read_rejects),       cmocka_unit_test(test_dead_merge),
	    cmocka_unit_test(test_read_older),	       cmocka_unit_test(test_kernel_merge),
	    cmocka_unit_test(test_kernel_table),       cmocka_unit_test(test_census_unseen),
	    cmocka_unit_test(test_sockstat6),	       cmocka_unit_test(test_counter_table),
	    cmocka_unit_test(test_hist_sum_above_u64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
