#include "timeline.h"
#include "log.h"
#include "report.h"
#include "schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void timeline_header(FILE *f, const struct client_opts *o, int64_t start_unix_us)
{
	struct jw w;
	const char *text;

	jw_init(&w);
	jw_obj(&w, NULL);
	jw_u64(&w, "timeline", 1);
	jw_i64(&w, "start_unix_us", start_unix_us);
	jw_obj(&w, "options");
	jw_str(&w, "server", o->server);
	jw_str(&w, "scenario", scenario_name(o->scenario));
	jw_i64(&w, "connections", o->connections);
	jw_i64(&w, "procs", o->procs);
	jw_i64(&w, "rate", o->rate);
	jw_i64(&w, "duration_ms", o->duration_ms);
	jw_i64(&w, "messages", o->messages);
	jw_i64(&w, "size", o->size);
	jw_i64(&w, "pipeline", o->pipeline);
	jw_i64(&w, "message_rate", o->message_rate);
	jw_i64(&w, "total_message_rate", o->total_message_rate);
	jw_str(&w, "arrivals", arrivals_name(o->arrivals));
	jw_bool(&w, "reconnect", o->reconnect);
	jw_obj_end(&w);
	jw_obj_end(&w);
	text = jw_finish(&w);
	if (text != NULL)
		fprintf(f, "%s\n", text);
	jw_free(&w);
}

/* ---- a row ---- */

static void row_counts(struct jw *w, const struct result *r)
{
	jw_obj(w, "counts");
	for (size_t i = 0; i < result_nfields; i++) {
		if (result_fields[i].group != RG_LIVE)
			jw_u64(w, result_fields[i].key, result_field_value(r, &result_fields[i]));
	}
	jw_obj_end(w);
	jw_obj(w, "now");
	jw_u64(w, "open", r->open_now);
	jw_u64(w, "connecting", r->connecting_now);
	jw_u64(w, "closing", r->closing_now);
	jw_u64(w, "established", r->open_now - r->connecting_now - r->closing_now);
	jw_obj_end(w);
}

/* Each histogram with samples: its percentiles, and its sparse form under "hist". */
static int row_hists(struct jw *w, const struct result *r)
{
	char *buf = malloc(HIST_JSON_MAX);

	if (buf == NULL)
		return -1;
	for (size_t i = 0; i < result_nhists; i++) {
		const struct hist *h = result_hist_of(r, &result_hists[i]);
		if (hist_count(h) == 0)
			continue;
		jw_obj(w, result_hists[i].name);
		jw_double(w, "p50_ms", (double)hist_percentile(h, 50) / 1000.0);
		jw_double(w, "p99_ms", (double)hist_percentile(h, 99) / 1000.0);
		jw_obj_end(w);
	}
	jw_obj(w, "hist");
	for (size_t i = 0; i < result_nhists; i++) {
		const struct hist *h = result_hist_of(r, &result_hists[i]);
		char key[48];
		if (hist_count(h) == 0)
			continue;
		snprintf(key, sizeof(key), "%s_us", result_hists[i].name);
		hist_to_json(h, buf, HIST_JSON_MAX);
		jw_raw(w, key, buf);
	}
	jw_obj_end(w);
	free(buf);
	return 0;
}

static void row_census(struct jw *w, const struct result *r)
{
	jw_obj(w, "census");
	report_census_json(w, "client", &r->client);
	report_census_json(w, "server", &r->server);
	jw_obj_end(w);
}

int timeline_row_write(FILE *f, const struct tl_row *row)
{
	struct jw w;
	const char *text;
	int rc = 0;

	jw_init(&w);
	jw_obj(&w, NULL);
	jw_i64(&w, "unix_s", row->unix_s);
	if (row->final) {
		jw_bool(&w, "final", 1);
		row_census(&w, &row->r);
	} else {
		jw_i64(&w, "unix_us", row->unix_us);
		jw_double(&w, "mono_s", row->mono_s);
		jw_double(&w, "interval_s", row->interval_s);
		row_counts(&w, &row->r);
		jw_double(&w, "msgs_per_s", row->msgs_per_s);
		report_failures_json(&w, &row->r, 1);
		row_census(&w, &row->r);
		if (row_hists(&w, &row->r) < 0)
			w.failed = 1;
		if (row->metrics.have) {
			jw_obj(&w, "server_metrics");
			jw_u64(&w, "open", row->metrics.open);
			jw_u64(&w, "fds", row->metrics.fds);
			jw_u64(&w, "close_wait", row->metrics.close_wait);
			jw_obj_end(&w);
		}
	}
	jw_obj_end(&w);
	text = jw_finish(&w);
	if (text == NULL)
		rc = -1;
	else
		fprintf(f, "%s\n", text);
	jw_free(&w);
	return rc;
}

/* ---- reading a row back ---- */

static double num(const struct jnode *obj, const char *key)
{
	const struct jnode *n = json_get(obj, key);

	return n != NULL && n->type == J_NUM ? n->num : 0;
}

static int read_counts(struct tl_row *row, const struct jnode *doc)
{
	const struct jnode *counts = json_get(doc, "counts"), *now = json_get(doc, "now");
	struct result *r = &row->r;

	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		uint64_t v = 0;
		if (f->group == RG_LIVE)
			continue;
		if (json_get_u64(counts, f->key, &v) < 0 && !(f->flags & RF_OPTIONAL))
			return -1;
		if (f->kind == RK_DEAD)
			((struct dead_peers *)((char *)r + f->offset))->count = v;
		else
			*(uint64_t *)((char *)r + f->offset) = v;
	}
	json_get_u64(now, "open", &r->open_now);
	json_get_u64(now, "connecting", &r->connecting_now);
	json_get_u64(now, "closing", &r->closing_now);
	return 0;
}

static int read_failures(struct result *r, const struct jnode *doc)
{
	const struct jnode *fails = json_get(doc, "failures");

	for (const struct jnode *ph = fails ? fails->child : NULL; ph != NULL; ph = ph->next) {
		int p = phase_parse(ph->key);
		if (p < 0)
			return -1;
		for (const struct jnode *k = ph->child; k != NULL; k = k->next) {
			int kind = fail_kind_parse(k->key);
			if (kind < 0 || !k->is_u64)
				return -1;
			r->fail[p][kind] = k->u64;
		}
	}
	return 0;
}

static int read_hists(struct result *r, const struct jnode *doc)
{
	const struct jnode *hs = json_get(doc, "hist");

	for (size_t i = 0; i < result_nhists; i++) {
		char key[48];
		const struct jnode *h;
		snprintf(key, sizeof(key), "%s_us", result_hists[i].name);
		h = json_get(hs, key);
		if (h != NULL &&
		    hist_from_json(result_hist_at(r, &result_hists[i]), h->start, NULL) < 0)
			return -1;
	}
	return 0;
}

/* One line into row. 0, 1 for a header line, or -1 with the reason. */
static int row_read(struct tl_row *row, const char *line, char *err, size_t errlen)
{
	struct jnode *doc = json_parse(line, err, errlen);
	const struct jnode *census, *metrics, *fin;
	uint64_t v = 0;
	int rc = -1;

	if (doc == NULL)
		return -1;
	memset(row, 0, sizeof(*row));
	result_init(&row->r);
	if (json_get(doc, "timeline") != NULL) {
		rc = 1;
		goto out;
	}
	if (json_get_u64(doc, "unix_s", &v) < 0) {
		snprintf(err, errlen, "a row without unix_s");
		goto out;
	}
	row->unix_s = (int64_t)v;
	fin = json_get(doc, "final");
	row->final = fin != NULL && fin->type == J_BOOL && fin->num != 0;
	census = json_get(doc, "census");
	if (census == NULL ||
	    report_census_read(&row->r.client, json_get(census, "client"), err, errlen) < 0 ||
	    report_census_read(&row->r.server, json_get(census, "server"), err, errlen) < 0)
		goto out;
	if (!row->final) {
		row->unix_us = (int64_t)num(doc, "unix_us");
		row->mono_s = num(doc, "mono_s");
		row->interval_s = num(doc, "interval_s");
		row->msgs_per_s = num(doc, "msgs_per_s");
		if (read_counts(row, doc) < 0 || read_failures(&row->r, doc) < 0 ||
		    read_hists(&row->r, doc) < 0) {
			snprintf(err, errlen,
				 "a row's counts, failures or histograms are malformed");
			goto out;
		}
		metrics = json_get(doc, "server_metrics");
		if (metrics != NULL) {
			row->metrics.have = 1;
			json_get_u64(metrics, "open", &row->metrics.open);
			json_get_u64(metrics, "fds", &row->metrics.fds);
			json_get_u64(metrics, "close_wait", &row->metrics.close_wait);
		}
	}
	rc = 0;
out:
	json_free(doc);
	return rc;
}

/* ---- merge ---- */

#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* acc += one: the same second of another run. */
static void row_merge(struct tl_row *acc, const struct tl_row *one, int first)
{
	if (first) {
		acc->unix_s = one->unix_s;
		acc->unix_us = one->unix_us;
		acc->final = one->final;
	}
	acc->unix_us = one->unix_us < acc->unix_us ? one->unix_us : acc->unix_us;
	acc->mono_s = MAX(acc->mono_s, one->mono_s);
	acc->interval_s = MAX(acc->interval_s, one->interval_s);
	acc->msgs_per_s += one->msgs_per_s;
	result_merge(&acc->r, &one->r);
	if (one->metrics.have) { /* one server seen by several runs */
		acc->metrics.have = 1;
		acc->metrics.open = MAX(acc->metrics.open, one->metrics.open);
		acc->metrics.fds = MAX(acc->metrics.fds, one->metrics.fds);
		acc->metrics.close_wait = MAX(acc->metrics.close_wait, one->metrics.close_wait);
	}
}

struct tl_input {
	const char *path;
	FILE *f;
	char *line;
	size_t cap;
	int have; /* row holds the next row */
	struct tl_row *row;
};

/* The input's next row (not a final one: those go to fin). 0, 1 at the end, -1. */
static int input_next(struct tl_input *in, struct tl_row *fin, int *nfin)
{
	char err[256];

	while (getline(&in->line, &in->cap, in->f) > 0) {
		int rc = row_read(in->row, in->line, err, sizeof(err));
		if (rc < 0) {
			log_error("merge: %s: %s", in->path, err);
			return -1;
		}
		if (rc == 1)
			continue; /* its header */
		if (in->row->final) {
			row_merge(fin, in->row, (*nfin)++ == 0);
			continue;
		}
		in->have = 1;
		return 0;
	}
	return 1;
}

/* Writes the merged rows in the order of their second. */
static int merge_rows(struct tl_input *in, int n, struct tl_row *acc, struct tl_row *fin)
{
	int nfin = 0;

	for (;;) {
		int64_t sec = INT64_MAX;
		int merged = 0;
		for (int i = 0; i < n; i++) {
			if (!in[i].have && input_next(&in[i], fin, &nfin) < 0)
				return -1;
			if (in[i].have && in[i].row->unix_s < sec)
				sec = in[i].row->unix_s;
		}
		if (sec == INT64_MAX)
			break;
		memset(acc, 0, sizeof(*acc));
		result_init(&acc->r);
		acc->r.parts = 0;
		for (int i = 0; i < n; i++) {
			if (in[i].have && in[i].row->unix_s == sec) {
				row_merge(acc, in[i].row, merged++ == 0);
				in[i].have = 0;
			}
		}
		if (timeline_row_write(stdout, acc) < 0)
			return -1;
	}
	return nfin > 0 ? timeline_row_write(stdout, fin) : 0;
}

int timeline_merge(int nfiles, char **files)
{
	struct tl_input *in = calloc((size_t)nfiles, sizeof(*in));
	struct tl_row *acc = calloc(1, sizeof(*acc)), *fin = calloc(1, sizeof(*fin));
	int rc = 1;

	if (in == NULL || acc == NULL || fin == NULL) {
		log_error("merge: out of memory");
		goto out;
	}
	result_init(&fin->r);
	fin->r.parts = 0;
	for (int i = 0; i < nfiles; i++) {
		in[i].path = files[i];
		in[i].f = fopen(files[i], "r");
		in[i].row = malloc(sizeof(*in[i].row));
		if (in[i].f == NULL || in[i].row == NULL) {
			log_error("merge: %s: %s", files[i], strerror(errno));
			goto out;
		}
	}
	printf("{\"timeline\":1,\"merged\":%d}\n", nfiles);
	if (merge_rows(in, nfiles, acc, fin) == 0 && fflush(stdout) == 0)
		rc = 0;
out:
	for (int i = 0; in != NULL && i < nfiles; i++) {
		if (in[i].f != NULL)
			fclose(in[i].f);
		free(in[i].line);
		free(in[i].row);
	}
	free(in);
	free(acc);
	free(fin);
	return rc;
}
