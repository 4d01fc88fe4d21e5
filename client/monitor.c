#include "monitor.h"
#include "clock.h"
#include "log.h"
#include "sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The period of the progress line and the timeline's rows. */
#define MONITOR_TICK_US 1000000

/* The states of the timeline's columns. */
static const int timeline_states[] = {
    CENSUS_LISTEN,    CENSUS_SYN_SENT,	CENSUS_SYN_RECV,  CENSUS_ESTABLISHED,
    CENSUS_FIN_WAIT1, CENSUS_FIN_WAIT2, CENSUS_TIME_WAIT, CENSUS_CLOSE_WAIT,
    CENSUS_LAST_ACK,  CENSUS_CLOSING,	CENSUS_CLOSE,
};
#define NTL (sizeof(timeline_states) / sizeof(timeline_states[0]))

/* States a socket passes through on its way to ESTABLISHED or to its end. */
static const int transitional[] = {CENSUS_SYN_SENT,  CENSUS_SYN_RECV,	CENSUS_FIN_WAIT1,
				   CENSUS_FIN_WAIT2, CENSUS_CLOSE_WAIT, CENSUS_LAST_ACK,
				   CENSUS_CLOSING};

/* Is addr one of this host's addresses? bind() to it with port 0 answers exactly that
 * (EADDRNOTAVAIL when not), wildcards included. */
static int address_is_local(const struct client_opts *o)
{
	return sock_bind_check(&o->addr, o->addrlen) == 0;
}

/* Whether a socket of the server's port is the server's: bound to its address, or to
 * its family's wildcard (a listener on 0.0.0.0 or ::); for an IPv4 server also an IPv6
 * socket of a dual-stack listener (:: itself, or ::ffff:a.b.c.d accepted through it,
 * which sock_diag reports as AF_INET6). Not a listener of the same port on another
 * address or family: its sockets (say a leaky server's CLOSE_WAIT) are not this
 * server's. A wildcard --server (0.0.0.0, ::) takes every socket of its family. */
static int server_sock(const struct census_sock_info *s, void *arg)
{
	const struct monitor *m = arg;
	static const uint32_t zero[4];

	if (m->o->addr.ss_family == AF_INET) {
		uint32_t ip = ((const struct sockaddr_in *)&m->o->addr)->sin_addr.s_addr;
		if (s->family == AF_INET)
			return ip == 0 || s->src[0] == ip || s->src[0] == 0;
		if (memcmp(s->src, zero, sizeof(zero)) == 0)
			return 1;
		return s->src[0] == 0 && s->src[1] == 0 && s->src[2] == htonl(0xffff) &&
		       (ip == 0 || s->src[3] == ip);
	}
	if (s->family != AF_INET6)
		return 0;
	const void *ip6 = &((const struct sockaddr_in6 *)&m->o->addr)->sin6_addr;
	return memcmp(ip6, zero, sizeof(zero)) == 0 || memcmp(s->src, ip6, 16) == 0 ||
	       memcmp(s->src, zero, sizeof(zero)) == 0;
}

/* The server's sockets of the port (server_sock). */
static int census_server(struct monitor *m, struct census_counts *out)
{
	return census_port_keep(m->cs, m->o->port, CENSUS_LOCAL, server_sock, m, out);
}

/* Whether the server's sockets can be counted here, and why not: the census, its
 * address one of this host's, a listener of its own on the port. */
static void server_visibility(struct monitor *m)
{
	struct census_counts c;

	m->server_visible = 0;
	if (m->cs == NULL)
		m->server_unseen = UNSEEN_NO_CENSUS;
	else if (!address_is_local(m->o))
		m->server_unseen = UNSEEN_REMOTE;
	else if (census_server(m, &c) < 0)
		m->server_unseen = UNSEEN_NO_CENSUS;
	else if (census_listening(&c))
		m->server_visible = 1;
	else if (census_port(m->cs, m->o->port, CENSUS_LOCAL, &c) == 0 && census_listening(&c))
		m->server_unseen = UNSEEN_OTHER_LISTENER;
	else
		m->server_unseen = UNSEEN_NO_LISTENER;
}

static void csv_header(FILE *f)
{
	fprintf(f, "time_s");
	for (int side = 0; side < 2; side++) {
		for (size_t i = 0; i < NTL; i++)
			fprintf(f, ",%s_%s", side ? "server" : "client",
				census_state_key(timeline_states[i]));
	}
	/* The counts after the RTT, so that the columns the plot reads keep their numbers. */
	fprintf(f, ",attempted,established,failed,open,rtt_p50_ms,rtt_p99_ms,closed_by_server,"
		   "reconnects,interrupted\n");
}

static int monitor_scrape_init(struct monitor *m)
{
	char err[256];

	m->scrape = malloc(sizeof(*m->scrape));
	if (m->scrape == NULL) {
		log_error("--metrics: out of memory");
		return -1;
	}
	if (scrape_init(m->scrape, m->o->metrics_url, err, sizeof(err)) < 0) {
		log_error("--metrics: %s", err);
		return -1;
	}
	return 0;
}

static int monitor_jsonl_init(struct monitor *m)
{
	m->cur = calloc(1, sizeof(*m->cur));
	m->prev = calloc(1, sizeof(*m->prev));
	m->row = calloc(1, sizeof(*m->row));
	if (m->cur == NULL || m->prev == NULL || m->row == NULL) {
		log_error("--timeline: out of memory");
		return -1;
	}
	timeline_header(m->timeline, m->o, result_unix_us());
	fflush(m->timeline);
	return 0;
}

int monitor_init(struct monitor *m, const struct client_opts *o, struct result *results,
		 int nresults)
{
	memset(m, 0, sizeof(*m));
	m->o = o;
	m->results = results;
	m->nresults = nresults;
	m->t0_us = m->last_us = clock_mono_us();
	m->sum = malloc(sizeof(*m->sum));
	if (m->sum == NULL) {
		log_error("out of memory for the progress counters");
		return -1;
	}
	m->ports = own_ports_alloc(o);
	if (m->ports == NULL)
		log_warn("cannot map the set of the run's ports (%s): the client census counts "
			 "every socket towards port %d, earlier runs' too",
			 strerror(errno), o->port);
	m->cs = census_open();
	if (m->cs == NULL)
		log_warn("census: cannot open a sock_diag socket (%s): socket states will be "
			 "unknown",
			 strerror(errno));
	server_visibility(m);
	if (!m->server_visible) {
		struct census_view v = {.unseen = m->server_unseen, .port = o->port};
		char why[160];
		log_info("the server %s: %s; its socket states are unknown", o->server,
			 census_unseen_text(&v, why, sizeof(why)));
	}
	if (o->metrics_url[0] != '\0' && monitor_scrape_init(m) < 0)
		return -1;
	if (o->timeline[0] != '\0') {
		m->timeline = fopen(o->timeline, "w");
		if (m->timeline == NULL) {
			log_error("--timeline %s: %s", o->timeline, strerror(errno));
			return -1;
		}
		m->jsonl = options_timeline_jsonl(o->timeline);
		if (m->jsonl)
			return monitor_jsonl_init(m);
		csv_header(m->timeline);
		m->rtt = calloc(3, sizeof(struct hist));
		if (m->rtt == NULL) {
			log_error("--timeline: out of memory");
			return -1;
		}
	}
	return 0;
}

/* The live counters of every worker, summed into m->sum (each read may be a moment old):
 * the counters of result_fields[], as result_merge sums them. */
static const struct result *monitor_sum(struct monitor *m)
{
	memset(m->sum, 0, sizeof(*m->sum));
	for (int i = 0; i < m->nresults; i++)
		result_add_counters(m->sum, &m->results[i]);
	return m->sum;
}

/* The echo RTT percentiles of the messages answered since the last row (empty when
 * none): the workers' histograms are summed and the previous sum subtracted. */
static void timeline_rtt(struct monitor *m)
{
	struct hist *all = &m->rtt[0], *last = &m->rtt[1], *interval = &m->rtt[2];

	hist_init(all);
	for (int i = 0; i < m->nresults; i++)
		hist_merge(all, &m->results[i].rtt_us);
	hist_since(interval, all, last);
	*last = *all;
	if (hist_count(interval) == 0) {
		fprintf(m->timeline, ",,");
		return;
	}
	fprintf(m->timeline, ",%.3f,%.3f", (double)hist_percentile(interval, 50) / 1e3,
		(double)hist_percentile(interval, 99) / 1e3);
}

static int sock_ours(const struct census_sock_info *s, void *arg)
{
	const struct monitor *m = arg;

	return own_ports_sock_ours(m->ports, s);
}

/* The run's own client sockets (ports.h): not what earlier runs or other clients of the
 * port left in this namespace. */
static int census_client(struct monitor *m, struct census_counts *out)
{
	if (m->ports == NULL)
		return census_port(m->cs, m->o->port, CENSUS_REMOTE, out);
	return census_port_keep(m->cs, m->o->port, CENSUS_REMOTE, sock_ours, m, out);
}

/* Both ends in one census when the server is visible (each census walks every socket of
 * the namespace, whatever its filter). ok[0]: the client's side counted, ok[1]: the
 * server's. 0, or -1 with errno when the census failed. */
static int census_ends(struct monitor *m, struct census_counts *cli, struct census_counts *srv,
		       int ok[2])
{
	ok[0] = ok[1] = 0;
	if (m->cs == NULL)
		return 0;
	if (!m->server_visible) {
		ok[0] = census_client(m, cli) == 0;
		return ok[0] ? 0 : -1;
	}
	if (census_port_both(m->cs, m->o->port, server_sock, m->ports != NULL ? sock_ours : NULL, m,
			     srv, cli) < 0)
		return -1;
	ok[0] = ok[1] = 1;
	return 0;
}

/* A row's census, when one is due: at 2,000,000 sockets a census takes about a second
 * here, so rows come every second but their census columns no more often than keeps the
 * census to 1 / CENSUS_SHARE of the time (census_next_due); the rows between leave them
 * empty (--timeline F.csv) or say not visible (F.jsonl). */
static void census_row(struct monitor *m, struct census_counts *cli, struct census_counts *srv,
		       int ok[2], int64_t now)
{
	int64_t cpu = clock_thread_cpu_us();

	ok[0] = ok[1] = 0;
	if (now < m->census_due_us)
		return;
	census_ends(m, cli, srv, ok);
	m->census_due_us = census_next_due(now, clock_thread_cpu_us() - cpu, MONITOR_TICK_US);
}

static void timeline_row(struct monitor *m, const struct result *sum, int64_t now)
{
	struct census_counts side[2];
	int ok[2];

	census_row(m, &side[0], &side[1], ok, now);
	fprintf(m->timeline, "%.3f", (double)(now - m->t0_us) / 1e6);
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < NTL; i++) {
			if (ok[s])
				fprintf(m->timeline, ",%llu",
					(unsigned long long)side[s].state[timeline_states[i]]);
			else
				fprintf(m->timeline, ",");
		}
	}
	fprintf(m->timeline, ",%llu,%llu,%llu,%llu", (unsigned long long)sum->attempted,
		(unsigned long long)sum->established, (unsigned long long)sum->failed,
		(unsigned long long)sum->open_now);
	timeline_rtt(m);
	fprintf(m->timeline, ",%llu,%llu,%llu\n", (unsigned long long)sum->closed_by_server,
		(unsigned long long)sum->reconnects, (unsigned long long)sum->interrupted);
	fflush(m->timeline);
}

/* The workers' results summed whole (counters, failures, histograms). */
static void monitor_collect(struct monitor *m, struct result *into)
{
	result_init(into);
	into->parts = 0;
	for (int i = 0; i < m->nresults; i++)
		result_merge(into, &m->results[i]);
}

/* d = what changed from prev to cur (counters, failures, histograms); the live gauges
 * as they are now. */
static void result_since(struct result *d, const struct result *cur, const struct result *prev)
{
	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *f = &result_fields[i];
		uint64_t now = result_field_value(cur, f), then = result_field_value(prev, f);
		uint64_t v = f->group == RG_LIVE ? now : now - (then < now ? then : now);
		if (f->kind == RK_DEAD)
			((struct dead_peers *)((char *)d + f->offset))->count = v;
		else
			*(uint64_t *)((char *)d + f->offset) = v;
	}
	for (int p = 0; p < PHASE_N; p++)
		for (int k = 0; k < FAIL_KINDS; k++)
			d->fail[p][k] = cur->fail[p][k] - prev->fail[p][k];
	for (size_t i = 0; i < result_nhists; i++)
		hist_since(result_hist_at(d, &result_hists[i]),
			   result_hist_of(cur, &result_hists[i]),
			   result_hist_of(prev, &result_hists[i]));
}

/* One JSON line: what completed in the wall-clock second unix_s (timeline.h). */
static void jsonl_row(struct monitor *m, int64_t unix_s, int64_t now)
{
	struct tl_row *row = m->row;
	struct result *swap;

	monitor_collect(m, m->cur);
	memset(row, 0, sizeof(*row));
	result_since(&row->r, m->cur, m->prev);
	row->unix_s = unix_s;
	row->unix_us = result_unix_us();
	row->mono_s = (double)(now - m->t0_us) / 1e6;
	row->interval_s = (double)(now - m->last_us) / 1e6;
	row->msgs_per_s = row->interval_s > 0 ? (double)row->r.messages / row->interval_s : 0;
	{
		int ok[2];

		census_row(m, &row->r.client.c, &row->r.server.c, ok, now);
		row->r.client.visible = ok[0];
		row->r.server.visible = ok[1];
	}
	row->r.client.port = row->r.server.port = m->o->port;
	row->r.server.unseen = m->server_visible ? UNSEEN_NO_CENSUS : m->server_unseen;
	if (m->scrape != NULL)
		row->metrics = m->scrape->last;
	if (timeline_row_write(m->timeline, row) < 0)
		log_warn("--timeline: out of memory for a row");
	fflush(m->timeline);
	swap = m->prev;
	m->prev = m->cur;
	m->cur = swap;
}

int64_t monitor_next_tick_us(struct monitor *m)
{
	int64_t unix_us;

	if (!m->jsonl) { /* every second from the start, whatever a tick's own work took */
		int64_t now = clock_mono_us();
		m->next_mono_us =
		    (m->next_mono_us == 0 ? m->t0_us : m->next_mono_us) + MONITOR_TICK_US;
		if (m->next_mono_us < now)
			m->next_mono_us = now;
		return m->next_mono_us - now;
	}
	/* 1 ms past the second: the timer runs on the monotonic clock, the rows on the wall
	 * clock; never early. */
	unix_us = result_unix_us();
	m->next_unix_s = unix_us / 1000000 + 1;
	return m->next_unix_s * 1000000 - unix_us + 1000;
}

int64_t monitor_tick(void *arg)
{
	struct monitor *m = arg;
	const struct result *sum = monitor_sum(m);
	int64_t now = clock_mono_us();

	if (m->o->progress) {
		double dt = (double)(now - m->last_us) / 1e6;
		log_info("progress: established %llu, open %llu, closing %llu, failed %llu, "
			 "dead %llu, reconnects %llu, %.0f msgs/s",
			 (unsigned long long)sum->established, (unsigned long long)sum->open_now,
			 (unsigned long long)sum->closing_now, (unsigned long long)sum->failed,
			 (unsigned long long)(sum->crashed.count + sum->vanished.count),
			 (unsigned long long)sum->reconnects,
			 dt > 0 ? (double)(sum->messages - m->last_messages) / dt : 0.0);
	}
	if (m->scrape != NULL)
		scrape_step(m->scrape, now);
	if (m->jsonl)
		jsonl_row(m, m->next_unix_s - 1, now);
	else if (m->timeline != NULL)
		timeline_row(m, sum, now);
	m->last_messages = sum->messages;
	m->last_us = now;
	return monitor_next_tick_us(m);
}

static int settled(const struct census_counts *c)
{
	for (size_t i = 0; i < sizeof(transitional) / sizeof(transitional[0]); i++) {
		if (c->state[transitional[i]] > 0)
			return 0;
	}
	return 1;
}

static int census_both(struct monitor *m, struct result *r)
{
	int ok[2];

	return census_ends(m, &r->client.c, &r->server.c, ok);
}

/* The last line: the census once the sockets settled. */
static void jsonl_final(struct monitor *m, const struct result *r)
{
	struct tl_row *row = m->row;

	memset(row, 0, sizeof(*row));
	row->final = 1;
	row->unix_s = result_unix_us() / 1000000;
	row->r.client = r->client;
	row->r.server = r->server;
	timeline_row_write(m->timeline, row);
	fflush(m->timeline);
}

void monitor_final(struct monitor *m, struct result *r)
{
	int64_t deadline = clock_mono_ms() + m->o->settle_ms;
	struct timespec pause = {0, 20 * 1000 * 1000};

	r->client.visible = 0;
	r->server.visible = 0;
	r->client.port = r->server.port = m->o->port;
	r->client.unseen = UNSEEN_NO_CENSUS;
	if (m->jsonl) /* what completed since the last tick, in the second it ends in */
		jsonl_row(m, result_unix_us() / 1000000, clock_mono_us());
	r->server.unseen = m->server_visible ? UNSEEN_NO_CENSUS : m->server_unseen;
	if (m->cs == NULL)
		return;
	for (;;) {
		if (census_both(m, r) < 0) {
			log_error("census of port %d: sock_diag: %s", m->o->port, strerror(errno));
			return;
		}
		if ((settled(&r->client.c) && (!m->server_visible || settled(&r->server.c))) ||
		    clock_mono_ms() >= deadline)
			break;
		nanosleep(&pause, NULL); /* polling the census until the deadline */
	}
	r->client.visible = 1;
	r->server.visible = m->server_visible;
	if (m->jsonl)
		jsonl_final(m, r);
	else if (m->timeline != NULL)
		timeline_row(m, monitor_sum(m), clock_mono_us());
}

void monitor_close(struct monitor *m)
{
	if (m->timeline != NULL && fclose(m->timeline) != 0)
		log_error("--timeline %s: %s", m->o->timeline, strerror(errno));
	m->timeline = NULL;
	free(m->rtt);
	m->rtt = NULL;
	free(m->cur);
	free(m->prev);
	free(m->row);
	m->cur = m->prev = NULL;
	m->row = NULL;
	if (m->scrape != NULL)
		scrape_free(m->scrape);
	free(m->scrape);
	m->scrape = NULL;
	free(m->sum);
	m->sum = NULL;
	census_close(m->cs);
	m->cs = NULL;
	own_ports_free(m->ports);
	m->ports = NULL;
}
