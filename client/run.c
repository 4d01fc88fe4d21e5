#include "run.h"
#include "crashport.h"
#include "driver.h"
#include "expect.h"
#include "fault.h"
#include "log.h"
#include "monitor.h"
#include "procs.h"
#include "report.h"
#include "sock.h"
#include "timeline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* fds a worker needs beside its connections: stdio, epoll, libevent's signal pipe, the
 * census socket, the timeline file, a pipe to the parent, and some room. */
#define FD_RESERVE 64
/* How long a client-side TIME_WAIT holds its port (Linux: TCP_TIMEWAIT_LEN, fixed). */
#define TIME_WAIT_S 60

static void libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static int read_sysctl(const char *path, long *a, long *b)
{
	FILE *f = fopen(path, "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "%ld %ld", a, b);
	fclose(f);
	return n >= 1 ? n : -1;
}

static int is_loopback(const struct client_opts *o)
{
	if (o->addr.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&o->addr)->sin_addr.s_addr) >> 24) ==
		       127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&o->addr)->sin6_addr);
}

/* Connections that end with our close() leave a TIME_WAIT holding their port for 60 s;
 * how many may exist at once, at most. -1: unknown (churn at an unlimited rate). */
static double time_wait_estimate(const struct client_opts *o)
{
	/* reset, crash and vanish (closed with RST) leave no TIME_WAIT. */
	double active = (double)(o->mix.total - o->mix.weight[SCEN_RESET] -
				 o->mix.weight[SCEN_CRASH] - o->mix.weight[SCEN_VANISH]) /
			o->mix.total;
	int churn = 0;

	for (int s = 0; s < SCEN_N; s++)
		churn |= o->mix.weight[s] > 0 && scenario_churns(s);
	if (o->duration_ms == 0 || !churn)
		return active * (double)o->connections;
	if (o->rate == 0)
		return -1;
	return active * (double)o->rate *
	       (double)(o->duration_ms < TIME_WAIT_S * 1000 ? o->duration_ms : TIME_WAIT_S * 1000) /
	       1000.0;
}

/* Each (source address, server address, server port) has the ephemeral port range; says
 * before starting when the load cannot fit. -1 = it cannot (usage error). */
static int check_ports(const struct client_opts *o)
{
	long lo = 32768, hi = 60999, reuse = 0, unused;
	double per_src, capacity, tw = time_wait_estimate(o), need;
	int nsrc = o->nsources > 0 ? o->nsources : 1;

	read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", &lo, &hi);
	read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", &reuse, &unused);
	per_src = (double)(hi - lo + 1);
	capacity = per_src * nsrc;
	if ((double)o->connections > capacity) {
		int want = (int)(((double)o->connections + per_src - 1) / per_src);
		char hint[96];
		if (is_loopback(o))
			snprintf(hint, sizeof(hint), "e.g. --sources 127.0.0.2-127.0.0.%d",
				 1 + want);
		else
			snprintf(hint, sizeof(hint), "%d addresses of this host", want);
		log_plain("load-client: %lld concurrent connections need as many ports towards %s, "
			  "but %d source address(es) x %.0f ephemeral ports (%ld-%ld) = %.0f: add "
			  "source addresses with --sources (%s)\n",
			  (long long)o->connections, o->server, nsrc, per_src, lo, hi, capacity,
			  hint);
		return -1;
	}
	/* connect() looks for a free port among every other port of the range first (the
	 * other half is kept for bind()); past half the range each connect() scans it all,
	 * measured here as a collapse from 5000 to ~300 connections/s. */
	if ((double)o->connections / nsrc > per_src / 2)
		log_warn("%.0f connections per source address use more than half of its %.0f "
			 "ephemeral ports: connect() slows down sharply past that; give --sources "
			 "at least %d addresses",
			 (double)o->connections / nsrc, per_src,
			 (int)((double)o->connections / (per_src / 2)) + 1);
	if (tw < 0) {
		log_warn("churn at an unlimited rate: client TIME_WAIT sockets hold their port "
			 "for %d s and may exhaust the %.0f ports (EADDRNOTAVAIL); give --rate to "
			 "have this checked",
			 TIME_WAIT_S, capacity);
		return 0;
	}
	need = (double)o->connections + (o->duration_ms > 0 ? tw : 0);
	if (need <= capacity)
		return 0;
	if (is_loopback(o) && reuse != 0) {
		log_warn(
		    "about %.0f ports needed (connections plus TIME_WAIT) but %.0f available; "
		    "net.ipv4.tcp_tw_reuse=%ld lets loopback connections reuse TIME_WAIT ports "
		    "older than 1 s, so it may still fit",
		    need, capacity, reuse);
		return 0;
	}
	log_plain("load-client: about %.0f ports needed towards %s (%lld connections plus "
		  "%.0f in TIME_WAIT for %d s) but only %.0f available: add --sources or lower "
		  "--rate\n",
		  need, o->server, (long long)o->connections, tw, TIME_WAIT_S, capacity);
	return -1;
}

/* Every --sources address must be one of this host (this network namespace): bound at
 * connect time, a foreign one would fail every connection with EADDRNOTAVAIL, which reads
 * like ephemeral ports running out. -1 = one is not (usage error). */
static int check_sources(const struct plan *p)
{
	for (int i = 0; i < p->nsources; i++) {
		struct sockaddr_storage ss = {.ss_family = AF_INET};
		struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
		char name[INET_ADDRSTRLEN];
		int err;

		sa->sin_addr.s_addr = plan_source(p, (uint64_t)i);
		err = sock_bind_check(&ss, sizeof(*sa));
		if (err != 0) {
			inet_ntop(AF_INET, &sa->sin_addr, name, sizeof(name));
			log_plain("load-client: --sources: cannot bind %s: %s%s\n", name,
				  strerror(err),
				  err == EADDRNOTAVAIL ? " (not an address of this host or network "
							 "namespace)"
						       : "");
			return -1;
		}
	}
	return 0;
}

/* Raises the soft fd limit to what a worker needs, within the hard limit. */
static int check_fds(const struct client_opts *o, const struct plan *p)
{
	uint64_t per = plan_slots(p, 0);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && per + FD_RESERVE > rl.rlim_max) {
		uint64_t room = rl.rlim_max > FD_RESERVE ? rl.rlim_max - FD_RESERVE : 1;
		log_plain("load-client: %llu connections per process do not fit the fd limit of "
			  "%llu: use --procs %llu or more\n",
			  (unsigned long long)per, (unsigned long long)rl.rlim_max,
			  (unsigned long long)(((uint64_t)o->connections + room - 1) / room));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && per + FD_RESERVE > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
	}
	return 0;
}

static void run_info_fill(struct run_info *info, const struct client_opts *o)
{
	char mix[200];

	memset(info, 0, sizeof(*info));
	snprintf(info->server, sizeof(info->server), "%s", o->server);
	if (o->scenario == SCEN_MIXED) {
		mix_format(&o->mix, mix, sizeof(mix));
		snprintf(info->scenario, sizeof(info->scenario), "mixed(%s)", mix);
	} else {
		snprintf(info->scenario, sizeof(info->scenario), "%s", scenario_name(o->scenario));
	}
	info->connections = (uint64_t)o->connections;
	info->procs = (uint64_t)o->procs;
	info->duration_ms = o->duration_ms;
	info->size = (uint64_t)o->size;
	info->messages = (uint64_t)o->messages;
	info->pipeline = (uint64_t)o->pipeline;
	info->reconnect = o->reconnect;
	info->reconnect_delay_ms = o->reconnect_delay_ms;
	info->reconnect_rate = o->reconnect_rate;
	info->msg_rate = o->total_message_rate > 0
			     ? (double)o->total_message_rate / (double)o->connections
			     : (double)o->message_rate;
	info->arrivals = o->arrivals;
	info->max_backlog = o->max_backlog;
}

/* Prints the table or the JSON on stdout. 0, or -1 when it could not be written. */
static int output(int json, const struct run_info *info, const struct result *total,
		  const struct result *parts, int nparts, const struct expect_set *ex)
{
	if (json) {
		struct jw w;
		const char *text;
		jw_init(&w);
		report_json(&w, info, total, parts, nparts, ex);
		text = jw_finish(&w);
		if (text == NULL) {
			jw_free(&w);
			log_error("out of memory writing the JSON report");
			return -1;
		}
		fputs(text, stdout);
		fputc('\n', stdout);
		jw_free(&w);
	} else {
		report_table(stdout, info, total, ex);
	}
	if (fflush(stdout) != 0) {
		log_error("writing the report: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Timeline columns: 1 time_s, 2..12 the client's states, 13..23 the server's, 24..27
 * attempted, established, failed, open, 28..29 rtt_p50_ms, rtt_p99_ms (then 30..32
 * closed_by_server, reconnects, interrupted, which the plot does not draw). */
#define TL_STATES  11
#define TL_RTT_P50 28
#define TL_COLUMNS 29

/* Which state columns are ever above 0: only those are drawn. -1 if unreadable. */
static int plot_used_columns(const char *timeline, int used[TL_COLUMNS + 1])
{
	char line[4096];
	FILE *f = fopen(timeline, "r");

	if (f == NULL)
		return -1;
	memset(used, 0, sizeof(int) * (TL_COLUMNS + 1));
	if (fgets(line, sizeof(line), f) == NULL) { /* the header */
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;
		for (int col = 1; col <= TL_COLUMNS && p != NULL; col++) {
			if (strtod(p, NULL) > 0)
				used[col] = 1;
			p = strchr(p, ',');
			p = p != NULL ? p + 1 : NULL;
		}
	}
	fclose(f);
	return 0;
}

/* Two panels: the sockets of both ends by state (the client solid, the server dashed,
 * one colour per state) and the echo RTT of each second (p50, p99). */
static void plot_script(FILE *p, const struct client_opts *o, const int used[])
{
	const char *sep = "";

	fprintf(p,
		"set datafile separator ','\nset terminal pngcairo noenhanced size 1100,800\n"
		"set output '%s'\nset multiplot layout 2,1\nset key outside right\n"
		"set grid\nset xlabel 'seconds'\nset ylabel 'sockets'\nset yrange [0:*]\n"
		"set offsets 0, 0, graph 0.05, 0\nplot ",
		o->plot);
	for (int col = 2; col < 2 + 2 * TL_STATES; col++) {
		int server = col >= 2 + TL_STATES, state = (col - 2) % TL_STATES;
		if (!used[col])
			continue;
		fprintf(p, "%s'%s' using 1:%d with steps lw 2 lc %d dt %d title columnhead", sep,
			o->timeline, col, state + 1, server ? 2 : 1);
		sep = ", ";
	}
	if (*sep == '\0')
		fprintf(p, "0 title 'no sockets'");
	fprintf(p, "\nset ylabel 'echo RTT ms'\nset logscale y\nset yrange [*:*]\nplot ");
	if (used[TL_RTT_P50])
		fprintf(p,
			"'%s' using 1:%d with linespoints lw 2 title 'p50', '%s' using 1:%d "
			"with linespoints lw 2 title 'p99'",
			o->timeline, TL_RTT_P50, o->timeline, TL_RTT_P50 + 1);
	else
		fprintf(p, "1 title 'no echo in this run'");
	fprintf(p, "\nunset multiplot\n");
}

static int plot(const struct client_opts *o)
{
	int used[TL_COLUMNS + 1];
	FILE *p;

	if (o->plot[0] == '\0')
		return 0;
	if (plot_used_columns(o->timeline, used) < 0) {
		log_warn("--plot: cannot read the timeline %s: %s", o->timeline, strerror(errno));
		return -1;
	}
	p = popen("gnuplot 2>/dev/null", "w");
	if (p == NULL) {
		log_warn("--plot: cannot run gnuplot: %s", strerror(errno));
		return -1;
	}
	plot_script(p, o, used);
	if (pclose(p) != 0) {
		log_warn("--plot: gnuplot failed (is it installed?); the timeline is in %s",
			 o->timeline);
		return -1;
	}
	return 0;
}

/* Checks and prepares what crash and vanish need, in that order. FAULT_READY, or the exit
 * status (the reason was printed). */
static int prepare_dead_peers(const struct client_opts *o, const struct plan *p,
			      struct crashport_plan *crash)
{
	int rc = fault_check(o);

	if (rc == FAULT_READY && plan_runs(p, SCEN_CRASH))
		rc = crashport_prepare(o, p, crash);
	if (rc == FAULT_READY)
		rc = fault_prepare(o);
	return rc;
}

/* This host's clock: its offset from --time-reference (measured before the wait, so it
 * costs none of the run), then the wait for --start-at. */
static void run_clock(const struct client_opts *o, struct clock_info *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->host, sizeof(c->host) - 1) < 0)
		snprintf(c->host, sizeof(c->host), "?");
	if (o->time_reference[0] != '\0')
		clockref_measure(c, o->time_reference);
	else
		snprintf(c->why, sizeof(c->why), "no --time-reference");
	if (o->time_reference[0] != '\0' && !c->known)
		log_warn("--time-reference %s: %s: this host's clock offset is unknown",
			 o->time_reference, c->why);
	c->start_at_us = o->start_at_us;
	if (o->start_at_us > 0) {
		if (result_unix_us() > o->start_at_us)
			log_warn(
			    "--start-at: already past once the run was prepared: starting now");
		clockref_wait_until(o->start_at_us);
	}
	c->started_us = result_unix_us();
}

static int run_workers(const struct driver_params *dp, struct result *results, struct monitor *m)
{
	event_set_log_callback(libevent_log);
	if (dp->plan->nworkers == 1)
		return driver_run(dp, 0, &results[0]);
	return procs_run(dp, results, m);
}

int run_main(const struct client_opts *o)
{
	struct expect_set *ex = calloc(1, sizeof(*ex));
	struct result *results = NULL, *total = malloc(sizeof(*total));
	struct monitor m;
	struct plan plan;
	struct crashport_plan crash = {.range_n = 0};
	struct driver_params dp = {.o = o, .plan = &plan, .crash = &crash, .tick = monitor_tick};
	struct kernel_watch kw;
	struct run_info info;
	struct clock_info clock;
	char err[256];
	int rc = 2, failed;

	if (ex == NULL || total == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	if (expect_parse(ex, o->expect, o->nexpect, err, sizeof(err)) < 0) {
		log_plain("load-client: --expect %s\n", err);
		options_usage_short();
		goto out;
	}
	plan_init(&plan, o);
	if (check_ports(o) < 0 || check_sources(&plan) < 0 || check_fds(o, &plan) < 0)
		goto out;
	rc = prepare_dead_peers(o, &plan, &crash);
	if (rc != FAULT_READY)
		goto out;
	rc = 1;
	run_clock(o, &clock);
	results = procs_alloc((int)o->procs);
	if (results == NULL) {
		log_error("mmap of the results: %s", strerror(errno));
		goto out;
	}
	if (monitor_init(&m, o, results, (int)o->procs) < 0)
		goto out_monitor;
	/* Per network namespace: read here once, not by each worker. */
	kernel_start(&kw);
	dp.ports = m.ports;
	dp.tick_arg = &m;
	dp.tick_first_us = monitor_next_tick_us(&m);
	failed = run_workers(&dp, results, &m);
	result_init(total);
	total->parts = 0;
	for (int i = 0; i < (int)o->procs; i++)
		result_merge(total, &results[i]);
	if (plan_runs(&plan, SCEN_VANISH) &&
	    fault_counters(&total->dropped_from_server, &total->dropped_to_server) < 0)
		log_warn("vanish: cannot read the drop counters of the nftables table");
	fault_teardown(); /* every vanished socket is closed and out of the set by now */
	monitor_final(&m, total);
	kernel_end(&kw, &total->kernel); /* after the settle, with the final census */
	expect_eval(ex, total);
	run_info_fill(&info, o);
	info.clocks[0] = clock;
	info.nclocks = 1;
	if (output(o->json, &info, total, results, (int)o->procs, ex) < 0)
		failed = 1;
	if (o->plot[0] != '\0') {
		monitor_close(&m); /* the timeline is complete */
		plot(o);
	}
	rc = failed ? 1 : expect_status(ex);
out_monitor:
	monitor_close(&m);
out:
	fault_teardown();
	procs_free(results, (int)o->procs);
	free(total);
	free(ex);
	return rc;
}

/* ---- merge ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (len + 65536 + 1 > cap) {
			char *nb = realloc(buf, cap = (len + 65536 + 1) * 2);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 65536, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Reads one --json result into r, its servers and scenarios into the merge's. 0, or -1
 * (logged). */
static int merge_read(const char *path, struct result *r, struct run_info *merged,
		      struct run_info *info)
{
	char err[256], *text = read_file(path);
	struct jnode *doc;
	int rc;

	if (text == NULL) {
		log_error("merge: %s: %s", path, strerror(errno));
		return -1;
	}
	doc = json_parse(text, err, sizeof(err));
	if (doc == NULL) {
		log_error("merge: %s: not JSON: %s", path, err);
		free(text);
		return -1;
	}
	rc = report_read(r, info, doc, err, sizeof(err));
	if (rc < 0)
		log_error("merge: %s: %s", path, err);
	for (int i = 0; rc == 0 && i < info->servers.n; i++)
		run_names_add(&merged->servers, info->servers.name[i]);
	for (int i = 0; rc == 0 && i < info->scenarios.n; i++)
		run_names_add(&merged->scenarios, info->scenarios.name[i]);
	for (int i = 0; rc == 0 && i < info->nclocks && merged->nclocks < RUN_NAMES_MAX; i++)
		merged->clocks[merged->nclocks++] = info->clocks[i];
	if (rc == 0) {
		merged->servers.more |= info->servers.more;
		merged->scenarios.more |= info->scenarios.more;
	}
	json_free(doc);
	free(text);
	return rc;
}

/* Results of different servers or scenarios add up to a sum of different things: said
 * once on stderr (the report's header names them). */
static void merge_warn(const struct run_names *s, const char *what)
{
	char names[1024];

	if (s->n + s->more > 1)
		log_warn("merge: the results are of different %s (%s): their sums mix them", what,
			 run_names_text(s, names, sizeof(names)));
}

static int merge_usage(const char *why)
{
	log_plain("load-client merge: %s\nusage: load-client merge A.json B.json ... [--json] "
		  "[--expect KEY=VALUE ...]\n",
		  why);
	return 2;
}

int run_merge(int argc, char **argv)
{
	if (argc > 2 && options_timeline_jsonl(argv[2]))
		return timeline_merge(argc - 2, argv + 2);
	const char **expects = calloc((size_t)argc, sizeof(char *));
	struct expect_set *ex = calloc(1, sizeof(*ex));
	struct result *total = malloc(sizeof(*total)), *one = malloc(sizeof(*one));
	struct run_info *info = calloc(2, sizeof(*info)); /* the merge's, one result's */
	int json = 0, nexp = 0, rc = 1;
	char err[256];

	if (expects == NULL || ex == NULL || total == NULL || one == NULL || info == NULL) {
		log_error("out of memory");
		goto out;
	}
	result_init(total);
	total->parts = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
			expects[nexp++] = argv[++i];
		} else if (strncmp(argv[i], "--expect=", 9) == 0) {
			expects[nexp++] = argv[i] + 9;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			rc = merge_usage("unknown option");
			goto out;
		} else {
			if (merge_read(argv[i], one, &info[0], &info[1]) < 0)
				goto out;
			result_merge(total, one);
			info[0].merged++;
		}
	}
	if (info[0].merged == 0) {
		rc = merge_usage("no result files given");
		goto out;
	}
	if (expect_parse(ex, expects, nexp, err, sizeof(err)) < 0) {
		log_plain("load-client merge: --expect %s\n", err);
		rc = 2;
		goto out;
	}
	merge_warn(&info[0].servers, "servers");
	merge_warn(&info[0].scenarios, "scenarios");
	expect_eval(ex, total);
	rc = output(json, &info[0], total, NULL, 0, ex) < 0 ? 1 : expect_status(ex);
out:
	free(info);
	free(expects);
	free(ex);
	free(total);
	free(one);
	return rc;
}
