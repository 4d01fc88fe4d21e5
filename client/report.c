#include "report.h"
#include "expect.h"
#include "schedule.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The states a census can report, in the order of a connection's life. */
static const int report_states[] = {
    CENSUS_LISTEN,    CENSUS_SYN_SENT,	CENSUS_SYN_RECV,  CENSUS_ESTABLISHED,
    CENSUS_FIN_WAIT1, CENSUS_FIN_WAIT2, CENSUS_TIME_WAIT, CENSUS_CLOSE_WAIT,
    CENSUS_LAST_ACK,  CENSUS_CLOSING,	CENSUS_CLOSE,
};
#define NREPORT_STATES (sizeof(report_states) / sizeof(report_states[0]))

/* ---- census ---- */

static void census_timers_json(struct jw *w, const struct census_counts *c)
{
	jw_obj(w, "timers");
	for (size_t i = 0; i < NREPORT_STATES; i++) {
		int st = report_states[i], any = 0;
		for (int t = 0; t < CENSUS_NTIMERS; t++)
			any |= c->timer[st][t].count > 0;
		if (!any)
			continue;
		jw_obj(w, census_state_key(st));
		for (int t = 0; t < CENSUS_NTIMERS; t++) {
			const struct census_timer_sum *ts = &c->timer[st][t];
			if (ts->count == 0)
				continue;
			jw_obj(w, census_timer_name((enum census_timer)t));
			jw_u64(w, "count", ts->count);
			jw_u64(w, "max_expiry_ms", ts->max_expiry_ms);
			jw_u64(w, "max_retrans", ts->max_retrans);
			jw_obj_end(w);
		}
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

void report_census_json(struct jw *w, const char *key, const struct census_view *v)
{
	const struct census_counts *c = &v->c;

	jw_obj(w, key);
	jw_bool(w, "visible", v->visible);
	if (!v->visible && census_unseen_key(v->unseen) != NULL)
		jw_str(w, "unseen", census_unseen_key(v->unseen));
	if (v->port > 0)
		jw_u64(w, "port", (uint64_t)v->port);
	if (v->visible) {
		jw_u64(w, "total", c->total);
		jw_obj(w, "states");
		for (size_t i = 0; i < NREPORT_STATES; i++)
			jw_u64(w, census_state_key(report_states[i]), c->state[report_states[i]]);
		jw_obj_end(w);
		census_timers_json(w, c);
		jw_u64(w, "accept_queue", c->accept_queue);
		jw_u64(w, "accept_backlog", c->accept_backlog);
		jw_u64(w, "recv_q", c->recv_q);
		jw_u64(w, "send_q", c->send_q);
		jw_i64(w, "elapsed_us", c->elapsed_us);
	}
	jw_obj_end(w);
}

static void census_timer_text(FILE *f, const struct census_counts *c, int st)
{
	for (int t = 0; t < CENSUS_NTIMERS; t++) {
		const struct census_timer_sum *ts = &c->timer[st][t];
		if (ts->count == 0)
			continue;
		fprintf(f, "  %s %llu (latest in %.1f s", census_timer_name((enum census_timer)t),
			(unsigned long long)ts->count, (double)ts->max_expiry_ms / 1000.0);
		if (ts->max_retrans > 0)
			fprintf(f, ", retrans/probes up to %llu",
				(unsigned long long)ts->max_retrans);
		fprintf(f, ")");
	}
}

void report_census_table(FILE *f, const char *title, const struct census_view *v,
			 const char *no_listener)
{
	const struct census_counts *c = &v->c;
	char why[160];

	if (!v->visible) {
		fprintf(f, "%s: %s\n", title, census_unseen_text(v, why, sizeof(why)));
		return;
	}
	fprintf(f, "%s: %llu sockets\n", title, (unsigned long long)c->total);
	if (no_listener != NULL && c->state[CENSUS_LISTEN] == 0)
		fprintf(f, "  %s\n", no_listener);
	for (size_t i = 0; i < NREPORT_STATES; i++) {
		int st = report_states[i];
		if (c->state[st] == 0)
			continue;
		fprintf(f, "  %-12s %8llu", census_state_name(st),
			(unsigned long long)c->state[st]);
		if (st == CENSUS_LISTEN)
			fprintf(f, "  accept queue %llu/%llu", (unsigned long long)c->accept_queue,
				(unsigned long long)c->accept_backlog);
		census_timer_text(f, c, st);
		fprintf(f, "\n");
	}
}

/* ---- result ---- */

void run_names_add(struct run_names *s, const char *name)
{
	for (int i = 0; i < s->n; i++) {
		if (strcmp(s->name[i], name) == 0)
			return;
	}
	if (s->n == RUN_NAMES_MAX) {
		s->more = 1;
		return;
	}
	snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", name);
}

const char *run_names_text(const struct run_names *s, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < s->n && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s->name[i]);
		used += n > 0 ? (size_t)n : 0;
	}
	if (s->more && used < len)
		snprintf(buf + used, len - used, " and more");
	return buf;
}

static void names_json(struct jw *w, const char *key, const struct run_names *s)
{
	jw_arr(w, key);
	for (int i = 0; i < s->n; i++)
		jw_str(w, NULL, s->name[i]);
	jw_arr_end(w);
	if (s->more) {
		char more[32];
		snprintf(more, sizeof(more), "%s_more", key);
		jw_bool(w, more, 1);
	}
}

/* A host's clock: when it started, and its offset from the reference if known. */
static void clock_json(struct jw *w, const char *key, const struct clock_info *c)
{
	jw_obj(w, key);
	jw_str(w, "host", c->host);
	if (c->start_at_us > 0)
		jw_i64(w, "start_at_unix_us", c->start_at_us);
	jw_i64(w, "started_unix_us", c->started_us);
	if (c->reference[0] != '\0')
		jw_str(w, "reference", c->reference);
	if (c->known) {
		jw_i64(w, "offset_us", c->offset_us);
		jw_i64(w, "uncertainty_us", c->uncertainty_us);
	} else {
		jw_str(w, "offset", "unknown");
		jw_str(w, "why", c->why);
	}
	jw_obj_end(w);
}

static void run_json(struct jw *w, const struct run_info *info)
{
	jw_obj(w, "run");
	if (info->merged > 0) {
		jw_u64(w, "merged", info->merged);
		names_json(w, "servers", &info->servers);
		names_json(w, "scenarios", &info->scenarios);
		jw_arr(w, "clocks");
		for (int i = 0; i < info->nclocks; i++)
			clock_json(w, NULL, &info->clocks[i]);
		jw_arr_end(w);
	} else {
		if (info->nclocks > 0)
			clock_json(w, "clock", &info->clocks[0]);
		jw_str(w, "server", info->server);
		jw_str(w, "scenario", info->scenario);
		jw_u64(w, "connections", info->connections);
		jw_u64(w, "procs", info->procs);
		jw_i64(w, "duration_ms", info->duration_ms);
		jw_u64(w, "messages", info->messages);
		jw_u64(w, "size", info->size);
		jw_u64(w, "pipeline", info->pipeline);
		if (info->msg_rate > 0) {
			jw_obj(w, "open_loop");
			jw_double(w, "message_rate", info->msg_rate);
			jw_str(w, "arrivals", arrivals_name(info->arrivals));
			jw_i64(w, "max_backlog", info->max_backlog);
			jw_obj_end(w);
		}
		if (info->reconnect) {
			jw_obj(w, "reconnect");
			jw_i64(w, "delay_ms", info->reconnect_delay_ms);
			jw_i64(w, "rate", info->reconnect_rate);
			jw_obj_end(w);
		}
	}
	jw_obj_end(w);
}

static void dead_json(struct jw *w, const char *key, const struct dead_peers *p)
{
	jw_obj(w, key);
	jw_u64(w, "count", p->count);
	jw_i64(w, "first_unix_us", p->first_unix_us);
	jw_i64(w, "last_unix_us", p->last_unix_us);
	jw_obj_end(w);
}

/* The counters of group g (result_fields[]) as the members of its object. */
static void group_json(struct jw *w, const struct result *r, enum result_group g)
{
	jw_obj(w, result_group_json(g));
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		if (f->group != g)
			continue;
		if (f->kind == RK_DEAD)
			dead_json(w, f->json,
				  (const struct dead_peers *)((const char *)r + f->offset));
		else
			jw_u64(w, f->json, result_field_value(r, f));
	}
	jw_obj_end(w);
}

static void by_scenario_json(struct jw *w, const struct result *r)
{
	jw_obj(w, "by_scenario");
	for (int s = 0; s < SCEN_N; s++)
		jw_u64(w, scenario_name(s), r->by_scenario[s]);
	jw_obj_end(w);
}

void report_failures_json(struct jw *w, const struct result *r, int skip_empty_phases)
{
	char buf[16];

	jw_obj(w, "failures");
	for (int p = 0; p < PHASE_N; p++) {
		if (skip_empty_phases && result_fail_phase(r, p) == 0)
			continue;
		jw_obj(w, phase_name(p));
		for (int k = 1; k < FAIL_KINDS; k++) {
			if (r->fail[p][k] > 0)
				jw_u64(w, fail_kind_name(k, buf, sizeof(buf)), r->fail[p][k]);
		}
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

static void hists_json(struct jw *w, const struct result *r)
{
	char *buf = malloc(HIST_JSON_MAX);

	if (buf == NULL) {
		w->failed = 1;
		return;
	}
	jw_obj(w, "hist");
	for (size_t i = 0; i < result_nhists; i++) {
		char key[48];
		snprintf(key, sizeof(key), "%s_us", result_hists[i].name);
		if (hist_to_json(result_hist_of(r, &result_hists[i]), buf, HIST_JSON_MAX) < 0)
			w->failed = 1;
		else
			jw_raw(w, key, buf);
	}
	jw_obj_end(w);
	free(buf);
}

static double rate(uint64_t n, int64_t us)
{
	return us > 0 ? (double)n * 1e6 / (double)us : 0;
}

/* Derived values, for people and scripts reading one report; merge recomputes them. */
static void summary_json(struct jw *w, const struct result *r)
{
	static const double pcts[] = {50, 90, 99, 99.9};
	static const char *const pct_names[] = {"p50_ms", "p90_ms", "p99_ms", "p99.9_ms"};

	jw_obj(w, "summary");
	jw_double(w, "msgs_per_s", rate(r->messages, r->elapsed_us));
	jw_double(w, "mb_per_s", rate(r->bytes_sent + r->bytes_received, r->elapsed_us) / 1e6);
	jw_double(w, "intended_msgs_per_s", rate(r->msgs_due, r->elapsed_us));
	jw_bool(w, "client_saturated", r->cpu_saturated_s > 0);
	for (size_t i = 0; i < result_nhists; i++) {
		const struct hist *h = result_hist_of(r, &result_hists[i]);
		jw_obj(w, result_hists[i].name);
		jw_u64(w, "count", hist_count(h));
		for (size_t p = 0; p < 4; p++)
			jw_double(w, pct_names[p], (double)hist_percentile(h, pcts[p]) / 1000.0);
		jw_double(w, "max_ms", (double)hist_max(h) / 1000.0);
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

static void expect_json(struct jw *w, const struct expect_set *ex)
{
	jw_arr(w, "expect");
	for (int i = 0; ex != NULL && i < ex->n; i++) {
		const struct expectation *e = &ex->e[i];
		jw_obj(w, NULL);
		jw_str(w, "expect", e->text);
		jw_str(w, "key", e->key);
		jw_str(w, "op", expect_op_text(e->op));
		jw_double(w, "value", e->value);
		jw_str(w, "result", expect_outcome_name(e->outcome));
		if (e->outcome == EX_UNKNOWN)
			jw_str(w, "why", e->why);
		else
			jw_double(w, "observed", e->observed);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void result_body_json(struct jw *w, const struct result *r)
{
	group_json(w, r, RG_COUNTS);
	by_scenario_json(w, r);
	group_json(w, r, RG_DEAD_PEERS);
	report_failures_json(w, r, 0);
	jw_i64(w, "elapsed_us", r->elapsed_us);
	jw_u64(w, "parts", r->parts);
	hists_json(w, r);
	summary_json(w, r);
}

void report_json(struct jw *w, const struct run_info *info, const struct result *r,
		 const struct result *parts, int nparts, const struct expect_set *ex)
{
	jw_obj(w, NULL);
	jw_u64(w, "version", 1);
	run_json(w, info);
	result_body_json(w, r);
	jw_obj(w, "census");
	report_census_json(w, "client", &r->client);
	report_census_json(w, "server", &r->server);
	jw_obj_end(w);
	kernel_json(w, &r->kernel);
	expect_json(w, ex);
	if (parts != NULL && nparts > 1) {
		jw_arr(w, "procs");
		for (int i = 0; i < nparts; i++) {
			jw_obj(w, NULL);
			result_body_json(w, &parts[i]);
			jw_obj_end(w);
		}
		jw_arr_end(w);
	}
	jw_obj_end(w);
}

/* ---- table ---- */

static void failures_table(FILE *f, const struct result *r)
{
	char buf[16];

	fprintf(f, "failed         %llu", (unsigned long long)r->failed);
	for (int p = 0; p < PHASE_N; p++) {
		for (int k = 1; k < FAIL_KINDS; k++) {
			if (r->fail[p][k] > 0)
				fprintf(f, "  %s/%s %llu", phase_name(p),
					fail_kind_name(k, buf, sizeof(buf)),
					(unsigned long long)r->fail[p][k]);
		}
	}
	fprintf(f, "\n");
}

static void hist_row(FILE *f, const char *name, const struct hist *h)
{
	if (hist_count(h) == 0) {
		fprintf(f, "%-14s -\n", name);
		return;
	}
	fprintf(f, "%-14s %8.3f %8.3f %8.3f %8.3f %8.3f  (%llu)\n", name,
		(double)hist_percentile(h, 50) / 1000.0, (double)hist_percentile(h, 90) / 1000.0,
		(double)hist_percentile(h, 99) / 1000.0, (double)hist_percentile(h, 99.9) / 1000.0,
		(double)hist_max(h) / 1000.0, (unsigned long long)hist_count(h));
}

/* "crashed 40 at 2026-11-26T03:57:01.123Z (within 3.1 ms)" */
static void dead_text(FILE *f, const char *what, const struct dead_peers *p)
{
	time_t t = (time_t)(p->first_unix_us / 1000000);
	struct tm tm;
	char when[32] = "?";

	fprintf(f, " %s %llu", what, (unsigned long long)p->count);
	if (p->count == 0)
		return;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, " at %s.%03dZ (the last %.1f ms later)", when,
		(int)(p->first_unix_us / 1000 % 1000),
		(double)(p->last_unix_us - p->first_unix_us) / 1000.0);
}

static void dead_table(FILE *f, const struct result *r)
{
	if (r->crashed.count == 0 && r->vanished.count == 0 && r->by_scenario[SCEN_CRASH] == 0 &&
	    r->by_scenario[SCEN_VANISH] == 0)
		return;
	fprintf(f, "dead peers    ");
	dead_text(f, "crashed", &r->crashed);
	fprintf(f, ";");
	dead_text(f, "vanished", &r->vanished);
	fprintf(f, "\n");
	if (r->vanished.count > 0)
		fprintf(
		    f,
		    "dropped        %llu packets from the server, %llu to it (after the vanish; "
		    "the server's own log or census tells when it closed)\n",
		    (unsigned long long)r->dropped_from_server,
		    (unsigned long long)r->dropped_to_server);
}

static void clock_text(FILE *f, int64_t unix_us)
{
	time_t t = (time_t)(unix_us / 1000000);
	struct tm tm;
	char when[32] = "?";

	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "%s.%03dZ", when, (int)(unix_us / 1000 % 1000));
}

/* Each host's start and clock offset (--start-at, --time-reference). */
static void clocks_table(FILE *f, const struct run_info *info)
{
	for (int i = 0; i < info->nclocks; i++) {
		const struct clock_info *c = &info->clocks[i];
		if (c->start_at_us == 0 && c->reference[0] == '\0' && info->merged == 0)
			continue; /* a run on one host at once: nothing to say */
		fprintf(f, "clock          %s started ", c->host);
		clock_text(f, c->started_us);
		if (c->start_at_us > 0)
			fprintf(f, " (%+.3f s from --start-at)",
				(double)(c->started_us - c->start_at_us) / 1e6);
		if (c->known)
			fprintf(f, "; offset %+.3f s +-%.3f s against %s\n",
				(double)c->offset_us / 1e6, (double)c->uncertainty_us / 1e6,
				c->reference);
		else
			fprintf(f, "; offset unknown (%s)\n",
				c->reference[0] ? c->why : "no --time-reference");
	}
}

/* Open loop: what was asked against what was done, and who was late. */
static void open_loop_table(FILE *f, const struct result *r)
{
	if (r->msgs_due > 0)
		fprintf(f,
			"open loop      intended %.0f msgs/s, achieved %.0f (%llu due, %llu "
			"answered); late sends %llu (up to %.3f ms late); unsent %llu\n",
			rate(r->msgs_due, r->elapsed_us), rate(r->messages, r->elapsed_us),
			(unsigned long long)r->msgs_due, (unsigned long long)r->messages,
			(unsigned long long)r->late_sends, (double)hist_max(&r->late_us) / 1000.0,
			(unsigned long long)r->unsent);
	if (hist_count(&r->send_lag_us) > 0)
		fprintf(f,
			"send lag       p50 %.3f ms, p99 %.3f ms, max %.3f ms (the client's own "
			"lateness on its schedule)\n",
			(double)hist_percentile(&r->send_lag_us, 50) / 1000.0,
			(double)hist_percentile(&r->send_lag_us, 99) / 1000.0,
			(double)hist_max(&r->send_lag_us) / 1000.0);
	if (r->ramped_down > 0 || r->warmup_failed > 0)
		fprintf(f,
			"stages         %llu connections closed by a ramp-down; %llu failures in "
			"the warm-up (not counted above)\n",
			(unsigned long long)r->ramped_down, (unsigned long long)r->warmup_failed);
	if (r->late_starts > 0)
		fprintf(f,
			"late starts    %llu connections opened after their time on the --rate "
			"schedule (no slot or handshake room free then)\n",
			(unsigned long long)r->late_starts);
	fprintf(f, "client cpu     %llu us, %.0f %% of one CPU over the run; saturated %llu s\n",
		(unsigned long long)r->cpu_us,
		r->elapsed_us > 0 ? 100.0 * (double)r->cpu_us / (double)r->elapsed_us : 0.0,
		(unsigned long long)r->cpu_saturated_s);
	if (r->cpu_saturated_s > 0)
		fprintf(f,
			"CLIENT SATURATED  a worker used %.0f %% or more of a CPU in %llu s of the "
			"run: its own timing may be what was measured (add --procs)\n",
			RESULT_CPU_SATURATED * 100, (unsigned long long)r->cpu_saturated_s);
}

static void expect_table(FILE *f, const struct expect_set *ex)
{
	for (int i = 0; ex != NULL && i < ex->n; i++) {
		const struct expectation *e = &ex->e[i];
		if (e->outcome == EX_UNKNOWN)
			fprintf(f, "expect %-30s unknown: %s\n", e->text, e->why);
		else
			fprintf(f, "expect %-30s %s (observed %g, wanted %s %g)\n", e->text,
				e->outcome == EX_OK ? "ok" : "VIOLATED", e->observed,
				expect_op_text(e->op), e->value);
	}
}

void report_table(FILE *f, const struct run_info *info, const struct result *r,
		  const struct expect_set *ex)
{
	double s = (double)r->elapsed_us / 1e6;

	if (info->merged > 0) {
		char names[1024];
		fprintf(f, "merged %u results", info->merged);
		if (info->servers.n > 0)
			fprintf(f, "  server%s %s",
				info->servers.n + info->servers.more > 1 ? "s" : "",
				run_names_text(&info->servers, names, sizeof(names)));
		if (info->scenarios.n > 0)
			fprintf(f, "  scenario%s %s",
				info->scenarios.n + info->scenarios.more > 1 ? "s" : "",
				run_names_text(&info->scenarios, names, sizeof(names)));
		fprintf(f, "\n");
	} else
		fprintf(f, "server %s  scenario %s  connections %llu  procs %llu\n", info->server,
			info->scenario, (unsigned long long)info->connections,
			(unsigned long long)info->procs);
	clocks_table(f, info);
	if (info->merged == 0 && info->msg_rate > 0)
		fprintf(f, "open loop %g msgs/s per connection, %s arrivals, max backlog %lld\n",
			info->msg_rate, arrivals_name(info->arrivals),
			(long long)info->max_backlog);
	fprintf(f,
		"attempted      %llu\nestablished    %llu  (connected %llu, completed %llu, "
		"cancelled %llu, closed by server %llu)\n",
		(unsigned long long)r->attempted, (unsigned long long)r->established,
		(unsigned long long)r->connected, (unsigned long long)r->completed,
		(unsigned long long)r->cancelled, (unsigned long long)r->closed_by_server);
	fprintf(f, "reconnects     %llu  (interrupted messages %llu)\n",
		(unsigned long long)r->reconnects, (unsigned long long)r->interrupted);
	failures_table(f, r);
	dead_table(f, r);
	fprintf(f, "echo mismatch  %llu\n", (unsigned long long)r->echo_mismatch);
	fprintf(f,
		"throughput     %.0f msgs/s  %.2f MB/s  (%llu messages, %llu bytes sent, %llu "
		"received, in %.2f s)\n",
		rate(r->messages, r->elapsed_us),
		rate(r->bytes_sent + r->bytes_received, r->elapsed_us) / 1e6,
		(unsigned long long)r->messages, (unsigned long long)r->bytes_sent,
		(unsigned long long)r->bytes_received, s);
	open_loop_table(f, r);
	fprintf(f, "%-14s %8s %8s %8s %8s %8s  (samples)\n", "latency ms", "p50", "p90", "p99",
		"p99.9", "max");
	for (size_t i = 0; i < result_nhists; i++) {
		const struct hist *h = result_hist_of(r, &result_hists[i]);
		if (hist_count(h) > 0 || !(result_hists[i].flags & RF_OPTIONAL))
			hist_row(f, result_hists[i].label, h);
	}
	report_census_table(f, "census client sockets (this run's)", &r->client, NULL);
	/* Seen at the start (a listener of the server's), gone at the end: e.g. inetd's rate
	 * limit closed it, or the server exited. */
	report_census_table(f, "census server port (local port)", &r->server,
			    "no listener at the end (there was one at the start)");
	kernel_table(f, &r->kernel, info->merged > 0);
	expect_table(f, ex);
}

/* ---- reading ---- */

static int read_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

static int read_census_states(struct census_counts *c, const struct jnode *n, char *err,
			      size_t errlen)
{
	const struct jnode *states = json_get(n, "states"), *timers = json_get(n, "timers");

	if (states == NULL || json_get_u64(n, "total", &c->total) < 0)
		return read_fail(err, errlen, "census without total or states");
	for (const struct jnode *s = states->child; s != NULL; s = s->next) {
		int st = census_state_parse(s->key);
		if (st < 0 || json_get_u64(states, s->key, &c->state[st]) < 0)
			return read_fail(err, errlen, "census: bad state");
	}
	for (const struct jnode *s = timers ? timers->child : NULL; s != NULL; s = s->next) {
		int st = census_state_parse(s->key);
		if (st < 0)
			return read_fail(err, errlen, "census: bad timer state");
		for (const struct jnode *t = s->child; t != NULL; t = t->next) {
			int ti;
			for (ti = 0; ti < CENSUS_NTIMERS; ti++)
				if (strcmp(t->key, census_timer_name((enum census_timer)ti)) == 0)
					break;
			if (ti == CENSUS_NTIMERS ||
			    json_get_u64(t, "count", &c->timer[st][ti].count) < 0 ||
			    json_get_u64(t, "max_expiry_ms", &c->timer[st][ti].max_expiry_ms) < 0 ||
			    json_get_u64(t, "max_retrans", &c->timer[st][ti].max_retrans) < 0)
				return read_fail(err, errlen, "census: bad timer");
		}
	}
	return 0;
}

int report_census_read(struct census_view *v, const struct jnode *n, char *err, size_t errlen)
{
	const struct jnode *vis = json_get(n, "visible");
	uint64_t elapsed = 0;

	const struct jnode *unseen = json_get(n, "unseen");
	uint64_t port = 0;

	memset(v, 0, sizeof(*v));
	if (vis == NULL || vis->type != J_BOOL)
		return read_fail(err, errlen, "census without \"visible\"");
	v->visible = vis->num != 0;
	/* Both optional: results written before them have neither. */
	if (json_get_u64(n, "port", &port) == 0 && port <= 65535)
		v->port = (int)port;
	if (unseen != NULL &&
	    (unseen->type != J_STR || (v->unseen = census_unseen_parse(unseen->str)) < 0))
		return read_fail(err, errlen, "census: unknown \"unseen\"");
	if (!v->visible)
		return 0;
	if (read_census_states(&v->c, n, err, errlen) < 0)
		return -1;
	json_get_u64(n, "accept_queue", &v->c.accept_queue);
	json_get_u64(n, "accept_backlog", &v->c.accept_backlog);
	json_get_u64(n, "recv_q", &v->c.recv_q);
	json_get_u64(n, "send_q", &v->c.send_q);
	json_get_u64(n, "elapsed_us", &elapsed);
	v->c.elapsed_us = (int64_t)elapsed;
	return 0;
}

static int read_dead(struct dead_peers *p, const struct jnode *n)
{
	uint64_t first = 0, last = 0;

	if (n == NULL)
		return 0;
	if (json_get_u64(n, "count", &p->count) < 0 ||
	    json_get_u64(n, "first_unix_us", &first) < 0 ||
	    json_get_u64(n, "last_unix_us", &last) < 0)
		return -1;
	p->first_unix_us = (int64_t)first;
	p->last_unix_us = (int64_t)last;
	return 0;
}

/* One counter of result_fields[] from its group's object. An RF_OPTIONAL one may be
 * absent (results written before it existed): 0 then. */
static int read_field(struct result *r, const struct result_field *f, const struct jnode *obj,
		      char *err, size_t errlen)
{
	char *dst = (char *)r + f->offset;
	int bad;

	if (f->flags & RF_OPTIONAL && json_get(obj, f->json) == NULL)
		return 0;
	if (f->kind == RK_DEAD)
		bad = read_dead((struct dead_peers *)dst, json_get(obj, f->json)) < 0;
	else
		bad = json_get_u64(obj, f->json, (uint64_t *)dst) < 0;
	if (bad)
		snprintf(err, errlen, "%s.%s missing or not a whole number",
			 result_group_json(f->group), f->json);
	return bad ? -1 : 0;
}

/* The counters of result_fields[]. Results written before crash and vanish existed have
 * no "dead_peers" at all. */
static int read_fields(struct result *r, const struct jnode *doc, char *err, size_t errlen)
{
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		const struct jnode *obj;
		if (f->group == RG_LIVE)
			continue;
		obj = json_get(doc, result_group_json(f->group));
		if (obj == NULL && f->group == RG_DEAD_PEERS)
			continue;
		if (read_field(r, f, obj, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int read_by_scenario(struct result *r, const struct jnode *doc, char *err, size_t errlen)
{
	const struct jnode *by = json_get(doc, "by_scenario");

	for (int s = 0; s < SCEN_N; s++) {
		/* Results written before crash and vanish existed lack them. */
		if (json_get_u64(by, scenario_name(s), &r->by_scenario[s]) < 0 &&
		    (!scenario_kills(s) || json_get(by, scenario_name(s)) != NULL))
			return read_fail(err, errlen, "by_scenario incomplete");
	}
	return 0;
}

static int read_failures(struct result *r, const struct jnode *doc, char *err, size_t errlen)
{
	const struct jnode *fails = json_get(doc, "failures");

	if (fails == NULL || fails->type != J_OBJ)
		return read_fail(err, errlen, "no failures object");
	for (const struct jnode *ph = fails->child; ph != NULL; ph = ph->next) {
		int p = phase_parse(ph->key);
		if (p < 0)
			return read_fail(err, errlen, "failures: unknown phase");
		for (const struct jnode *k = ph->child; k != NULL; k = k->next) {
			int kind = fail_kind_parse(k->key);
			if (kind < 0 || k->type != J_NUM || !k->is_u64) {
				snprintf(err, errlen, "failures.%s.%s: unknown kind or bad count",
					 ph->key, k->key);
				return -1;
			}
			r->fail[p][kind] = k->u64;
		}
	}
	return 0;
}

static int read_hists(struct result *r, const struct jnode *doc, char *err, size_t errlen)
{
	const struct jnode *hs = json_get(doc, "hist");

	for (size_t i = 0; i < result_nhists; i++) {
		char key[48];
		const struct jnode *h;
		snprintf(key, sizeof(key), "%s_us", result_hists[i].name);
		h = json_get(hs, key);
		if (h == NULL && result_hists[i].flags & RF_OPTIONAL)
			continue; /* written before it existed: empty */
		if (h == NULL ||
		    hist_from_json(result_hist_at(r, &result_hists[i]), h->start, NULL) < 0) {
			snprintf(err, errlen, "hist.%s missing or malformed", key);
			return -1;
		}
	}
	return 0;
}

static void read_clock(struct clock_info *c, const struct jnode *n)
{
	const struct jnode *s;
	uint64_t v = 0;

	memset(c, 0, sizeof(*c));
	if ((s = json_get(n, "host")) != NULL && s->type == J_STR)
		snprintf(c->host, sizeof(c->host), "%s", s->str);
	if ((s = json_get(n, "reference")) != NULL && s->type == J_STR)
		snprintf(c->reference, sizeof(c->reference), "%s", s->str);
	if ((s = json_get(n, "why")) != NULL && s->type == J_STR)
		snprintf(c->why, sizeof(c->why), "%s", s->str);
	if (json_get_u64(n, "start_at_unix_us", &v) == 0)
		c->start_at_us = (int64_t)v;
	if (json_get_u64(n, "started_unix_us", &v) == 0)
		c->started_us = (int64_t)v;
	if ((s = json_get(n, "offset_us")) != NULL && s->type == J_NUM) {
		c->known = 1;
		c->offset_us = (int64_t)s->num;
		if ((s = json_get(n, "uncertainty_us")) != NULL && s->type == J_NUM)
			c->uncertainty_us = (int64_t)s->num;
	}
}

/* The clock of a run, or a merged document's clocks (absent in older documents). */
static void read_clocks(struct run_info *info, const struct jnode *run)
{
	const struct jnode *one = json_get(run, "clock"), *arr = json_get(run, "clocks");

	if (one != NULL && info->nclocks < RUN_NAMES_MAX)
		read_clock(&info->clocks[info->nclocks++], one);
	for (const struct jnode *e = arr ? arr->child : NULL; e != NULL; e = e->next) {
		if (info->nclocks < RUN_NAMES_MAX)
			read_clock(&info->clocks[info->nclocks++], e);
	}
}

/* A name, or a merged document's list of them (absent in older documents: none). */
static void read_names(struct run_names *s, const struct jnode *run, const char *one,
		       const char *many)
{
	const struct jnode *n = json_get(run, one), *arr = json_get(run, many), *more;
	char key[32];

	if (n != NULL && n->type == J_STR)
		run_names_add(s, n->str);
	for (const struct jnode *e = arr ? arr->child : NULL; e != NULL; e = e->next) {
		if (e->type == J_STR)
			run_names_add(s, e->str);
	}
	snprintf(key, sizeof(key), "%s_more", many);
	more = json_get(run, key);
	if (more != NULL && more->type == J_BOOL && more->num != 0)
		s->more = 1;
}

int report_read(struct result *r, struct run_info *info, const struct jnode *doc, char *err,
		size_t errlen)
{
	const struct jnode *census = json_get(doc, "census");
	uint64_t version = 0, elapsed = 0, parts = 1;

	result_init(r);
	memset(info, 0, sizeof(*info));
	if (json_get_u64(doc, "version", &version) < 0 || version != 1)
		return read_fail(err, errlen, "not a load-client result (version 1)");
	read_names(&info->servers, json_get(doc, "run"), "server", "servers");
	read_names(&info->scenarios, json_get(doc, "run"), "scenario", "scenarios");
	read_clocks(info, json_get(doc, "run"));
	if (read_fields(r, doc, err, errlen) < 0 || read_by_scenario(r, doc, err, errlen) < 0 ||
	    read_failures(r, doc, err, errlen) < 0 || read_hists(r, doc, err, errlen) < 0)
		return -1;
	if (json_get_u64(doc, "elapsed_us", &elapsed) < 0)
		return read_fail(err, errlen, "elapsed_us missing");
	json_get_u64(doc, "parts", &parts);
	r->elapsed_us = (int64_t)elapsed;
	r->parts = (uint32_t)parts;
	if (census == NULL ||
	    report_census_read(&r->client, json_get(census, "client"), err, errlen) < 0 ||
	    report_census_read(&r->server, json_get(census, "server"), err, errlen) < 0)
		return -1;
	return kernel_read(&r->kernel, json_get(doc, "kernel"), err, errlen);
}
