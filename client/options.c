#include "options.h"
#include "conf.h"
#include "log.h"
#include "result.h"
#include "schedule.h"
#include "clockref.h"

#include <time.h>
#include "sock.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFF(f) offsetof(struct client_opts, f)
#define DAY_MS (24LL * 3600 * 1000)

/* The numeric flags. Ranges are what makes sense for one run, not hidden limits. */
static const struct conf_key num_flags[] = {
    {"connections",
     CONF_INT,
     {"10", NULL},
     1,
     10000000,
     "",
     "concurrent connections",
     NULL,
     OFF(connections),
     0},
    {"rate",
     CONF_INT,
     {"0", NULL},
     0,
     10000000,
     "/s",
     "new connections per second (0: unlimited)",
     NULL,
     OFF(rate),
     0},
    {"duration",
     CONF_DURATION,
     {"0", NULL},
     1,
     DAY_MS,
     "",
     "run length (0: one pass)",
     NULL,
     OFF(duration_ms),
     CONF_F_ZERO_OFF},
    {"hold",
     CONF_DURATION,
     {"5s", NULL},
     1,
     DAY_MS,
     "",
     "idle/silent hold without --duration",
     NULL,
     OFF(hold_ms),
     0},
    {"messages",
     CONF_INT,
     {"10", NULL},
     1,
     1000000000,
     "",
     "messages per connection",
     NULL,
     OFF(messages),
     0},
    {"size", CONF_SIZE, {"64", NULL}, 1, 16 << 20, "bytes", "message size", NULL, OFF(size), 0},
    {"pipeline",
     CONF_INT,
     {"1", NULL},
     1,
     1024,
     "",
     "unanswered messages per connection",
     NULL,
     OFF(pipeline),
     0},
    {"connect-timeout",
     CONF_DURATION,
     {"10s", NULL},
     1,
     3600000,
     "",
     "connect deadline",
     NULL,
     OFF(connect_timeout_ms),
     0},
    {"reply-timeout",
     CONF_DURATION,
     {"10s", NULL},
     1,
     3600000,
     "",
     "per-message deadline",
     NULL,
     OFF(reply_timeout_ms),
     0},
    {"heartbeat",
     CONF_DURATION,
     {"1s", NULL},
     1,
     3600000,
     "",
     "idle: message interval",
     NULL,
     OFF(heartbeat_ms),
     0},
    {"heartbeat-tick",
     CONF_DURATION,
     {"0", NULL},
     0,
     60000,
     "",
     "idle: heartbeats wait for the next multiple of this (0: none)",
     NULL,
     OFF(heartbeat_tick_ms),
     0},
    {"max-connecting",
     CONF_INT,
     {"512", NULL},
     1,
     1000000,
     "",
     "handshakes in flight",
     NULL,
     OFF(max_connecting),
     0},
    {"backoff",
     CONF_DURATION,
     {"100ms", NULL},
     0,
     3600000,
     "",
     "pause after a failed connect",
     NULL,
     OFF(backoff_ms),
     0},
    {"settle",
     CONF_DURATION,
     {"2s", NULL},
     0,
     3600000,
     "",
     "wait for sockets to settle",
     NULL,
     OFF(settle_ms),
     0},
    {"user-timeout",
     CONF_DURATION,
     {"0", NULL},
     1,
     3600000,
     "",
     "TCP_USER_TIMEOUT",
     NULL,
     OFF(user_timeout_ms),
     CONF_F_ZERO_OFF},
    {"procs", CONF_INT, {"1", NULL}, 1, 256, "", "worker processes", NULL, OFF(procs), 0},
    {"reconnect-delay",
     CONF_DURATION,
     {"100ms", NULL},
     0,
     3600000,
     "",
     "wait before a reconnect (jitter +-50 %)",
     NULL,
     OFF(reconnect_delay_ms),
     0},
    {"reconnect-rate",
     CONF_INT,
     {"0", NULL},
     0,
     10000000,
     "/s",
     "reconnects per second (0: unlimited)",
     NULL,
     OFF(reconnect_rate),
     0},
    {"message-rate",
     CONF_INT,
     {"0", NULL},
     0,
     10000000,
     "/s",
     "open loop: messages per second per connection (0: closed loop)",
     NULL,
     OFF(message_rate),
     0},
    {"total-message-rate",
     CONF_INT,
     {"0", NULL},
     0,
     1000000000,
     "/s",
     "open loop: messages per second of the run, split between the connections",
     NULL,
     OFF(total_message_rate),
     0},
    {"warmup",
     CONF_DURATION,
     {"0", NULL},
     1,
     DAY_MS,
     "",
     "left out of every histogram and rate",
     NULL,
     OFF(warmup_ms),
     CONF_F_ZERO_OFF},
    {"max-backlog",
     CONF_INT,
     {"1000", NULL},
     1,
     1000000000,
     "",
     "open loop: messages due and unsent before a connection fails (backlog)",
     NULL,
     OFF(max_backlog),
     0},
};
#define NUM_FLAGS (sizeof(num_flags) / sizeof(num_flags[0]))

void options_usage_short(void)
{
	log_plain("usage: load-client --server HOST:PORT [options]: `load-client --help` lists "
		  "them and the --expect keys (man load-client has it all)\n");
}

/* The value a numeric flag takes, for the usage line. */
static const char *num_flag_arg(const struct conf_key *k)
{
	if (strcmp(k->unit, "/s") == 0)
		return "R/s";
	switch (k->type) {
	case CONF_DURATION:
		return "T";
	case CONF_SIZE:
		return "B";
	default:
		return "N";
	}
}

static void usage_flag(FILE *f, const char *flag, const char *help, const char *def)
{
	fprintf(f, "  %-31s %s%s%s\n", flag, help, def ? "; default " : "", def ? def : "");
}

static void usage_flags(FILE *f, int before_numbers);

/* Every numeric flag from the table, with its default. */
static void usage_num_flags(FILE *f)
{
	for (size_t i = 0; i < NUM_FLAGS; i++) {
		const struct conf_key *k = &num_flags[i];
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s %s", k->name, num_flag_arg(k));
		usage_flag(f, flag, k->help, k->def[0]);
	}
}

/* The counters' --expect keys, from the table that defines them (result.h). */
static void usage_counter_keys(FILE *f)
{
	int col = 0;

	for (size_t i = 0; i < result_nfields; i++) {
		const struct result_field *k = &result_fields[i];
		int len = (int)strlen(k->key);
		if (k->group == RG_LIVE)
			continue;
		if (col > 0 && col + 1 + len > 84) {
			fputc('\n', f);
			col = 0;
		}
		col += fprintf(f, "%s%s", col == 0 ? "  " : " ", k->key);
	}
	fputs(";\n", f);
}

/* The latencies' keys, from the histograms' table (result.h). */
static void usage_latency_keys(FILE *f)
{
	fputs("  {", f);
	for (size_t i = 0; i < result_nhists; i++)
		fprintf(f, "%s%s", i ? "," : "", result_hists[i].name);
	fputs("}_{p50,p99,p99.9,max,min,mean}_ms;\n", f);
}

void options_usage(void)
{
	FILE *f = stdout;

	fputs("usage: load-client --server HOST:PORT [options]\n"
	      "       load-client states --port PORT [--json]\n"
	      "       load-client merge A.json B.json ... [--json] [--expect KEY=VALUE ...]\n"
	      "       load-client --help | --version\n"
	      "options (durations take ms, s, m or h; sizes are bytes or k/m):\n",
	      f);
	usage_flags(f, 1);
	usage_num_flags(f);
	usage_flags(f, 0);
	fputs("scenarios (man load-client has the details):\n"
	      "  echo        messages until the run ends (--messages without --duration)\n"
	      "  close       --messages echoes, then close(); replaced while the run lasts\n"
	      "  half-close  --messages echoes, shutdown(SHUT_WR), the rest of the echo, the "
	      "server's FIN\n"
	      "  reset       --messages echoes, then close() with SO_LINGER 0 (RST)\n"
	      "  idle        held, one message every --heartbeat; a server's close is a failure\n"
	      "  silent      held, sending nothing; a server's close counts as closed_by_server\n"
	      "  crash       --messages echoes, then gone without FIN or RST (CAP_NET_ADMIN)\n"
	      "  vanish      the first echo, then its packets dropped both ways (CAP_NET_ADMIN, "
	      "nft,\n"
	      "              not in the initial network namespace)\n"
	      "  mixed       each connection one of the above by --mix weight\n"
	      "--reconnect: a connection the server closes (FIN or RST) while its scenario still\n"
	      "  wants it is counted closed_by_server, not failed, and reconnects after\n"
	      "  --reconnect-delay (each +-50 % at random), at most --reconnect-rate a second,\n"
	      "  going on with its messages. Messages unanswered at a close count as interrupted.\n"
	      "expect keys (KEY=VALUE, also != <= >= < >; see man load-client):\n",
	      f);
	usage_counter_keys(f);
	fputs("  failed.PHASE (connect first_reply echo close), failed.KIND (an errno name,\n"
	      "  deadline, eof, mismatch, crash_ports, backlog);\n"
	      "  client.STATE, server.STATE (established time_wait close_wait fin_wait2 ...),\n"
	      "  client.total, server.total, server.accept_queue;\n",
	      f);
	usage_latency_keys(f);
	fputs("  msgs_per_s, mb_per_s; kernel.COUNTER (TCPAbortOnClose ... ListenDrops: deltas\n"
	      "  over the run in this network namespace), kernel.sockstat.NAME (inuse orphan tw\n"
	      "  alloc mem; inuse IPv4 only), kernel.sockstat6.inuse (IPv6). failed=0\n"
	      "  (failed.unnamed=0 when some failures are named) and echo_mismatch=0 are\n"
	      "  expected unless named.\n"
	      "exit status: 0 ok; 1 a failure or a violated --expect; 2 a usage error (or vanish\n"
	      "  refused); 3 an expectation that could not be checked, or crash/vanish without\n"
	      "  CAP_NET_ADMIN or nft\n",
	      f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_plain("load-client: %s\n", msg);
	options_usage_short();
	return -1;
}

static const struct conf_key *num_flag(const char *name)
{
	for (size_t i = 0; i < NUM_FLAGS; i++) {
		if (strcmp(num_flags[i].name, name) == 0)
			return &num_flags[i];
	}
	return NULL;
}

static int parse_num(struct client_opts *o, const struct conf_key *k, const char *val)
{
	char reason[CONF_ERR_MAX], tmp[64];

	/* --rate 500/s reads as the usage line writes it. */
	if (strcmp(k->unit, "/s") == 0 && strlen(val) < sizeof(tmp)) {
		size_t n = strlen(val);
		strcpy(tmp, val);
		if (n > 2 && strcmp(tmp + n - 2, "/s") == 0)
			tmp[n - 2] = '\0';
		val = tmp;
	}
	if (conf_parse_value(k, o, val, reason, sizeof(reason)) < 0)
		return usage_error("--%s: %s", k->name, reason);
	return 0;
}

/* --keepalive 30s,10s,3: idle and interval in whole seconds, then the probe count. */
static int parse_keepalive(struct client_opts *o, const char *val)
{
	static const struct conf_key parts[3] = {
	    {"keepalive idle",
	     CONF_DURATION,
	     {NULL, NULL},
	     1000,
	     32767000,
	     "s",
	     "",
	     NULL,
	     OFF(keepalive[0]),
	     CONF_F_WHOLE_SECONDS},
	    {"keepalive interval",
	     CONF_DURATION,
	     {NULL, NULL},
	     1000,
	     32767000,
	     "s",
	     "",
	     NULL,
	     OFF(keepalive[1]),
	     CONF_F_WHOLE_SECONDS},
	    {"keepalive count", CONF_INT, {NULL, NULL}, 1, 127, "", "", NULL, OFF(keepalive[2]), 0},
	};
	char buf[128], *rest = buf, *tok;
	char reason[CONF_ERR_MAX];
	int i;

	if (strlen(val) >= sizeof(buf))
		return usage_error("--keepalive: %s", "too long");
	strcpy(buf, val);
	/* strsep, not strtok: "1s,,3" has an empty interval, not a count for an interval. */
	for (i = 0; i < 3 && (tok = strsep(&rest, ",")) != NULL; i++) {
		if (*tok == '\0')
			break;
		if (conf_parse_value(&parts[i], o, tok, reason, sizeof(reason)) < 0)
			return usage_error("--keepalive: %s: %s", parts[i].name, reason);
	}
	if (i != 3 || rest != NULL)
		return usage_error(
		    "--keepalive: expected IDLE,INTERVAL,COUNT, three values (e.g. 30s,10s,3), "
		    "got '%s'",
		    val);
	return 0;
}

static int parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* --sources 127.0.0.2-127.0.0.40, or a single address. */
static int parse_sources(struct client_opts *o, const char *val)
{
	char buf[64], *dash;

	if (strlen(val) >= sizeof(buf))
		return usage_error("--sources: '%s': expected A-B (IPv4)", val);
	strcpy(buf, val);
	dash = strchr(buf, '-');
	if (dash != NULL)
		*dash = '\0';
	if (parse_ipv4(buf, &o->src_first) < 0 ||
	    parse_ipv4(dash ? dash + 1 : buf, &o->src_last) < 0 || o->src_last < o->src_first ||
	    o->src_last - o->src_first >= 65536)
		return usage_error("--sources: '%s': expected A-B, IPv4 addresses, A <= B, at most "
				   "65536",
				   val);
	o->nsources = (int)(o->src_last - o->src_first + 1);
	return 0;
}

/* --crash-source ADDR: a numeric IPv4 or IPv6 address of this host. */
static int parse_crash_source(struct client_opts *o, const char *val)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&o->crash_src;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&o->crash_src;

	memset(&o->crash_src, 0, sizeof(o->crash_src));
	if (inet_pton(AF_INET, val, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		o->crash_srclen = sizeof(*v4);
	} else if (inet_pton(AF_INET6, val, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		o->crash_srclen = sizeof(*v6);
	} else {
		return usage_error("--crash-source: '%s': expected a numeric IPv4 or IPv6 address",
				   val);
	}
	return 0;
}

int options_parse_port(const char *s)
{
	long v = 0;

	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
		return -1;
	v = strtol(s, NULL, 10);
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* The PORT of HOST:PORT or [V6]:PORT; NULL when there is none (the address parser then
 * says what was expected). */
static const char *port_text(const char *val)
{
	const char *close = strchr(val, ']');

	if (val[0] == '[')
		return close != NULL && close[1] == ':' ? close + 2 : NULL;
	close = strrchr(val, ':');
	return close != NULL ? close + 1 : NULL;
}

static int parse_server(struct client_opts *o, const char *val)
{
	char err[256];
	struct sockaddr_storage ss;
	const char *port = port_text(val);

	/* One rule for every bad port (0, 99999, -1, abc): a server listens on 1 .. 65535. */
	if (port != NULL && options_parse_port(port) < 0)
		return usage_error("--server: %s: %s", val, OPTIONS_PORT_RULE);
	if (sock_parse_hostport(val, &ss, &o->addrlen, err, sizeof(err)) < 0)
		return usage_error("--server: %s: %s", val, err);
	o->addr = ss;
	o->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snprintf(o->server, sizeof(o->server), "%s", val);
	return 0;
}

static int parse_path(char *dst, const char *flag, const char *val)
{
	if (strlen(val) >= OPT_PATH_MAX || val[0] == '\0')
		return usage_error("%s: bad path '%s'", flag, val);
	strcpy(dst, val);
	return 0;
}

static int parse_scenario(struct client_opts *o, const char *val)
{
	int s = scenario_parse(val);

	if (s < 0)
		return usage_error("--scenario: unknown scenario '%s'", val);
	o->scenario = s;
	return 0;
}

static int parse_mix(struct client_opts *o, const char *val)
{
	char err[256];

	if (mix_parse(val, &o->mix, err, sizeof(err)) < 0)
		return usage_error("--mix: %s", err);
	return 0;
}

int options_timeline_jsonl(const char *path)
{
	size_t n = strlen(path);

	return n >= 6 && strcmp(path + n - 6, ".jsonl") == 0;
}

static int parse_timeline(struct client_opts *o, const char *val)
{
	return parse_path(o->timeline, "--timeline", val);
}

static int parse_metrics(struct client_opts *o, const char *val)
{
	if (strncmp(val, "http://", 7) != 0)
		return usage_error("--metrics: '%s': expected http://HOST:PORT/metrics", val);
	return parse_path(o->metrics_url, "--metrics", val);
}

static int parse_plot(struct client_opts *o, const char *val)
{
	return parse_path(o->plot, "--plot", val);
}

static int parse_arrivals(struct client_opts *o, const char *val)
{
	int a = arrivals_parse(val);

	if (a < 0)
		return usage_error("--arrivals: '%s': expected fixed or poisson", val);
	o->arrivals = a;
	return 0;
}

static int parse_stages_into(struct stages *st, char *text, const char *flag, const char *val)
{
	char err[256];

	if (strlen(val) >= 256)
		return usage_error("%s: too long", flag);
	if (stages_parse(st, val, 10000000, err, sizeof(err)) < 0)
		return usage_error("%s: %s", flag, err);
	strcpy(text, val);
	return 0;
}

static int parse_stages(struct client_opts *o, const char *val)
{
	return parse_stages_into(&o->stages, o->stages_text, "--stages", val);
}

static int parse_rate_stages(struct client_opts *o, const char *val)
{
	return parse_stages_into(&o->rate_stages, o->rate_stages_text, "--rate-stages", val);
}

static int parse_start_at(struct client_opts *o, const char *val)
{
	char err[256];
	struct timespec now;

	if (clockref_parse_time(val, &o->start_at_us, err, sizeof(err)) < 0)
		return usage_error("--start-at: %s", err);
	clock_gettime(CLOCK_REALTIME, &now);
	if (o->start_at_us <= (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000)
		return usage_error("--start-at: %s is already past (this host's clock reads %lld)",
				   val, (long long)now.tv_sec);
	return 0;
}

static int parse_time_reference(struct client_opts *o, const char *val)
{
	if (strncmp(val, "http://", 7) != 0)
		return usage_error("--time-reference: '%s': expected http://HOST:PORT/PATH", val);
	return parse_path(o->time_reference, "--time-reference", val);
}

static int parse_expect(struct client_opts *o, const char *val)
{
	if (o->nexpect >= OPT_MAX_EXPECT)
		return usage_error("--expect: at most %d", OPT_MAX_EXPECT);
	o->expect[o->nexpect++] = val;
	return 0;
}

/* Switches: val is NULL. */
static int set_json(struct client_opts *o, const char *val)
{
	(void)val;
	o->json = 1;
	return 0;
}

static int set_progress(struct client_opts *o, const char *val)
{
	(void)val;
	o->progress = 1;
	return 0;
}

static int set_quiet(struct client_opts *o, const char *val)
{
	(void)val;
	o->progress = 0;
	return 0;
}

static int set_reconnect(struct client_opts *o, const char *val)
{
	(void)val;
	o->reconnect = 1;
	return 0;
}

/* The flags other than the numeric ones (num_flags): each row drives the parser, the check
 * that a flag exists and whether it takes a value, and its line of the usage, in this
 * order. */
struct flag {
	const char *name;
	const char *arg;  /* its value as the usage names it; NULL: a switch, without one */
	const char *help; /* NULL: listed on the line of the flag before it ("--a | --b") */
	const char *def;  /* the default the usage states, or NULL */
	int (*parse)(struct client_opts *o, const char *val);
	int before_numbers; /* listed before the numeric flags */
};

static const struct flag flags[] = {
    {"server", "HOST:PORT", "the echo server (required), [::1]:PORT for IPv6", NULL, parse_server,
     1},
    {"scenario", "S", "one of the scenarios below", "echo (mixed with --mix)", parse_scenario, 1},
    {"mix", "S=W,...", "weights of a mixed run, e.g. echo=50,close=50", NULL, parse_mix, 1},
    {"keepalive", "IDLE,INTERVAL,COUNT", "TCP keepalive, e.g. 30s,10s,3", "off", parse_keepalive,
     0},
    {"sources", "A-B", "IPv4 source addresses, round robin", "the kernel's", parse_sources, 0},
    {"crash-source", "ADDR", "source address of crash connections", "none", parse_crash_source, 0},
    {"stages", "T:N,...", "ramp the connections linearly, e.g. 10s:1000,30s:5000,10s:0", "none",
     parse_stages, 0},
    {"rate-stages", "T:R,...", "ramp --rate linearly, e.g. 10s:100,20s:100", "none",
     parse_rate_stages, 0},
    {"start-at", "TIME", "start at this wall-clock time (RFC 3339 or epoch seconds)", "at once",
     parse_start_at, 0},
    {"time-reference", "URL", "an HTTP server whose Date gives this host's clock offset",
     "none (offset unknown)", parse_time_reference, 0},
    {"arrivals", "fixed|poisson", "open loop: spacing of the messages due", "fixed", parse_arrivals,
     0},
    {"reconnect", NULL, "replace connections the server closes", "off", set_reconnect, 0},
    {"json", NULL, "the result as one JSON object", "a table", set_json, 0},
    {"progress", NULL, "a progress line a second on stderr", "when stderr is a terminal",
     set_progress, 0},
    {"quiet", NULL, NULL, NULL, set_quiet, 0},
    {"timeline", "F.csv|F.jsonl", "one row of states and counts a second", "none", parse_timeline,
     0},
    {"metrics", "URL", "the server's /metrics into the timeline (http://HOST:PORT/metrics)", "none",
     parse_metrics, 0},
    {"plot", "F.png", "the timeline drawn by gnuplot", "none", parse_plot, 0},
    {"expect", "KEY=VALUE", "check the result (repeatable; keys below)", NULL, parse_expect, 0},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static const struct flag *flag_find(const char *name)
{
	for (size_t i = 0; i < NFLAGS; i++) {
		if (strcmp(flags[i].name, name) == 0)
			return &flags[i];
	}
	return NULL;
}

/* The usage lines of the flags listed before (or after) the numeric ones. */
static void usage_flags(FILE *f, int before_numbers)
{
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *k = &flags[i];
		char line[64];
		int n;
		if (k->before_numbers != before_numbers || k->help == NULL)
			continue;
		n = snprintf(line, sizeof(line), "--%s%s%s", k->name, k->arg ? " " : "",
			     k->arg ? k->arg : "");
		for (size_t j = i + 1; j < NFLAGS && flags[j].help == NULL && n > 0; j++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " | --%s", flags[j].name);
		usage_flag(f, line, k->help, k->def);
	}
}

static void options_defaults(struct client_opts *o)
{
	char reason[CONF_ERR_MAX];

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < NUM_FLAGS; i++) {
		if (conf_parse_value(&num_flags[i], o, num_flags[i].def[0], reason,
				     sizeof(reason)) < 0)
			log_error("bad default of --%s: %s", num_flags[i].name, reason);
	}
	o->scenario = -1;
	o->progress = -1;
}

/* Crash connections need a source address no other connection of the run uses: a later
 * connect() that picked a crashed connection's 4-tuple would send its SYN to the server's
 * stale socket, whose challenge ACK our kernel answers with RST, resetting it early. Only
 * crash connections: any source. In a mix: --crash-source, or the last of --sources. */
static int check_crash_source(struct client_opts *o)
{
	int crash = mix_runs(&o->mix, SCEN_CRASH),
	    others = o->mix.total > o->mix.weight[SCEN_CRASH];

	if (o->crash_srclen > 0 && !crash)
		return usage_error(
		    "--crash-source goes with crash connections (--scenario crash, or "
		    "crash in --mix)");
	if (o->crash_srclen > 0 && o->crash_src.ss_family != o->addr.ss_family)
		return usage_error("--crash-source must be of the server's address family");
	if (o->crash_srclen > 0 && o->nsources > 0) {
		uint32_t a = ntohl(((struct sockaddr_in *)&o->crash_src)->sin_addr.s_addr);
		if (a >= o->src_first && a <= o->src_last)
			return usage_error(
			    "--crash-source must not be one of --sources: other "
			    "connections could reuse a crashed connection's 4-tuple");
	}
	if (!crash || !others || o->crash_srclen > 0)
		return 0;
	if (o->nsources < 2)
		return usage_error(
		    "crash connections in a mix need a source address of their own "
		    "(else a later connection may reuse a crashed 4-tuple and reset "
		    "the server's stale socket early): give --crash-source ADDR, or "
		    "--sources with two or more addresses (the last is kept for crash)");
	/* The last source becomes the crash source; the others keep the rest. */
	((struct sockaddr_in *)&o->crash_src)->sin_family = AF_INET;
	((struct sockaddr_in *)&o->crash_src)->sin_addr.s_addr = htonl(o->src_last);
	o->crash_srclen = sizeof(struct sockaddr_in);
	o->src_last--;
	o->nsources--;
	return 0;
}

/* --stages sets the run's length and its highest target of connections; --rate-stages
 * its rate. */
static int options_check_stages(struct client_opts *o)
{
	int64_t total = stages_total_ms(&o->stages);

	if (o->rate_stages.n > 0) {
		if (o->rate > 0)
			return usage_error("--rate-stages ramps the rate: not with --rate");
		if (o->duration_ms == 0 && o->stages.n == 0)
			o->duration_ms = stages_total_ms(&o->rate_stages);
	}
	if (o->stages.n == 0)
		return 0;
	if (o->duration_ms > 0 && o->duration_ms != total)
		return usage_error("--stages lasts %lld ms; --duration must not say otherwise",
				   (long long)total);
	o->duration_ms = total;
	o->connections = (int64_t)stages_max(&o->stages, 0);
	if (o->connections < 1)
		return usage_error("--stages: every target is 0");
	return 0;
}

/* Checks between flags, once all are read. */
static int options_check(struct client_opts *o)
{
	int mix_given = o->mix.total > 0; /* --mix parsed (a mix has weights) */

	if (o->server[0] == '\0')
		return usage_error("--server HOST:PORT is required");
	if (o->scenario < 0)
		o->scenario = mix_given ? SCEN_MIXED : SCEN_ECHO;
	if (o->scenario == SCEN_MIXED && !mix_given)
		return usage_error("--scenario mixed needs --mix, e.g. --mix echo=50,close=30,"
				   "reset=20");
	if (o->scenario != SCEN_MIXED && mix_given)
		return usage_error("--mix goes with --scenario mixed, not %s",
				   scenario_name(o->scenario));
	if (o->scenario != SCEN_MIXED)
		mix_single(&o->mix, o->scenario);
	if (o->nsources > 0 && o->addr.ss_family != AF_INET)
		return usage_error("--sources are IPv4 addresses; the server %s is not", o->server);
	if (check_crash_source(o) < 0)
		return -1;
	if (o->message_rate > 0 && o->total_message_rate > 0)
		return usage_error("--message-rate (per connection) and --total-message-rate (of "
				   "the run) are two ways to say one thing: give one");
	if (options_check_stages(o) < 0)
		return -1;
	if (o->heartbeat_tick_ms > o->heartbeat_ms / 2)
		return usage_error("--heartbeat-tick %lld ms is more than half of --heartbeat "
				   "(%lld ms): a heartbeat could wait longer than it is meant to",
				   (long long)o->heartbeat_tick_ms, (long long)o->heartbeat_ms);
	if (o->procs > o->connections)
		return usage_error("--procs must not exceed --connections");
	if (o->plot[0] != '\0' && o->timeline[0] == '\0' &&
	    snprintf(o->timeline, sizeof(o->timeline), "%s.csv", o->plot) >=
		(int)sizeof(o->timeline))
		return usage_error("--plot: the path is too long for its timeline (F.png.csv)");
	if (o->metrics_url[0] != '\0' && o->timeline[0] == '\0')
		return usage_error("--metrics goes into the timeline: give --timeline F.jsonl");
	if (o->plot[0] != '\0' && options_timeline_jsonl(o->timeline))
		return usage_error("--plot draws a CSV timeline: give --timeline F.csv with it");
	if (o->warmup_ms > 0 && o->warmup_ms >= o->duration_ms)
		return usage_error(
		    "--warmup must be shorter than the run (--duration or --stages)");
	if (o->progress < 0)
		o->progress = isatty(STDERR_FILENO);
	return 0;
}

int options_parse(struct client_opts *o, int argc, char **argv)
{
	char tuned[80] = "";

	options_defaults(o);
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *arg = argv[i], *val, *eq;
		const struct flag *f;
		const struct conf_key *k;
		int rc;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
			return usage_error("unexpected argument '%s'", arg);
		eq = strchr(arg, '=');
		snprintf(name, sizeof(name), "%.*s",
			 (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2), arg + 2);
		f = flag_find(name);
		k = num_flag(name);
		if (f != NULL && f->arg == NULL) {
			if (eq != NULL)
				return usage_error("--%s takes no value", name);
			f->parse(o, NULL);
			continue;
		}
		if (f == NULL && k == NULL)
			return usage_error("unknown option --%s", name);
		if (eq != NULL) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return usage_error("--%s needs a value", name);
			val = argv[++i];
		}
		rc = k != NULL ? parse_num(o, k, val) : f->parse(o, val);
		if (rc < 0)
			return -1;
		if (strncmp(name, "reconnect-", 10) == 0)
			snprintf(tuned, sizeof(tuned), "--%s", name);
	}
	/* A delay or rate without --reconnect would be silently without effect. */
	if (tuned[0] != '\0' && !o->reconnect)
		return usage_error("%s goes with --reconnect", tuned);
	return options_check(o);
}
