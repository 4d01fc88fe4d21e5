#include "config.h"
#include "log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field) offsetof(struct server_config, field)
#define H          (3600LL * 1000) /* an hour in ms */
#define D          (24 * H)

static const char *const mode_names[] = {"correct", "leaky", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

/* Defaults are explained, key by key, in conf/server.conf. Column def[1] is leaky mode;
 * NULL means the same as correct mode. */
const struct conf_key config_keys[] = {
	{"listen", CONF_STRING, {"127.0.0.1:7000", NULL}, 0, 0, "HOST:PORT",
	 "address to listen on (:P = 127.0.0.1:P, [::1]:P for IPv6, port 0 = any free port)",
	 NULL, OFF(listen), CONF_F_ADDRESS},
	{"mode", CONF_ENUM, {"correct", NULL}, 0, 0, "", "correct | leaky (defaults of every mechanism)",
	 mode_names, OFF(mode), 0},
	{"workers", CONF_INT, {"1", NULL}, 1, 64, "processes",
	 "processes sharing the port (SO_REUSEPORT only when > 1)", NULL, OFF(workers), 0},
	{"backlog", CONF_INT, {"511", NULL}, 1, 65535, "connections",
	 "accept queue length (capped by net.core.somaxconn)", NULL, OFF(backlog), 0},
	{"max_connections", CONF_INT, {"100000", NULL}, 1, 10000000, "connections",
	 "per worker; above it new connections are closed at once (reason overload)", NULL,
	 OFF(max_connections), 0},
	{"output_high_watermark", CONF_SIZE, {"64k", NULL}, 1024, 64LL << 20, "bytes",
	 "queued echo per connection above which reading from it pauses", NULL,
	 OFF(output_high_watermark), 0},
	{"read_size", CONF_SIZE, {"16k", NULL}, 512, 1LL << 20, "bytes",
	 "bytes read per readable event", NULL, OFF(read_size), 0},
	{"write_timeout", CONF_DURATION, {"30s", NULL}, 0, D, "",
	 "close when queued echo makes no progress for this long", NULL, OFF(write_timeout), 0},
	{"fin_timeout", CONF_DURATION, {"30s", "0"}, 0, D, "",
	 "after the peer's FIN, the time allowed to flush its echo", NULL, OFF(fin_timeout), 0},
	{"heartbeat_timeout", CONF_DURATION, {"60s", "0"}, 0, D, "",
	 "close a connection that sends nothing for this long", NULL, OFF(heartbeat_timeout), 0},
	{"keepalive", CONF_BOOL, {"yes", "no"}, 0, 0, "", "TCP keepalive on accepted sockets",
	 NULL, OFF(keepalive), 0},
	{"keepalive_idle", CONF_DURATION, {"60s", NULL}, 1000, 32767000, "",
	 "idle time before the first probe (TCP_KEEPIDLE)", NULL, OFF(keepalive_idle),
	 CONF_F_WHOLE_SECONDS},
	{"keepalive_interval", CONF_DURATION, {"10s", NULL}, 1000, 32767000, "",
	 "time between probes (TCP_KEEPINTVL)", NULL, OFF(keepalive_interval),
	 CONF_F_WHOLE_SECONDS},
	{"keepalive_count", CONF_INT, {"6", NULL}, 1, 127, "probes",
	 "unanswered probes before the kernel aborts (TCP_KEEPCNT)", NULL, OFF(keepalive_count),
	 0},
	{"user_timeout", CONF_DURATION, {"130s", "0"}, 0, D, "",
	 "TCP_USER_TIMEOUT: unacknowledged data older than this aborts the connection", NULL,
	 OFF(user_timeout), 0},
	{"reset_dead_peers", CONF_BOOL, {"yes", "no"}, 0, 0, "",
	 "closes for heartbeat, write-timeout, fin-timeout send RST (SO_LINGER 0)", NULL,
	 OFF(reset_dead_peers), 0},
	{"early_close", CONF_BOOL, {"yes", "no"}, 0, 0, "",
	 "watch EPOLLRDHUP (EV_CLOSED) while reading is paused", NULL, OFF(early_close), 0},
	{"close_on_eof", CONF_BOOL, {"yes", "no"}, 0, 0, "",
	 "close after recv() returns 0 and the echo is flushed (no = the CLOSE_WAIT bug)", NULL,
	 OFF(close_on_eof), 0},
	{"shutdown_timeout", CONF_DURATION, {"10s", NULL}, 0, H, "",
	 "graceful drain: connections still open after this are reset", NULL,
	 OFF(shutdown_timeout), 0},
	{"accept_pause", CONF_DURATION, {"100ms", NULL}, 1, 60000, "",
	 "how long the listener pauses after EMFILE/ENFILE", NULL, OFF(accept_pause), 0},
	{"metrics_listen", CONF_STRING, {NULL, NULL}, 0, 0, "HOST:PORT",
	 "Prometheus /metrics endpoint (:P = 127.0.0.1:P; unset = off)", NULL,
	 OFF(metrics_listen), CONF_F_ADDRESS},
	{"census_interval", CONF_DURATION, {"1s", NULL}, 100, H, "",
	 "how often the server counts its port's sockets by state", NULL, OFF(census_interval), 0},
	{"close_wait_alarm", CONF_DURATION, {"5s", NULL}, 0, D, "",
	 "warn about CLOSE_WAIT sockets older than this (0 = never)", NULL, OFF(close_wait_alarm),
	 0},
	{"log_level", CONF_ENUM, {"info", NULL}, 0, 0, "", "error | warn | info | debug",
	 level_names, OFF(log_level), 0},
	{"metrics_max_clients", CONF_INT, {"8", NULL}, 1, 1024, "connections",
	 "metrics connections served at once; more wait in the listener's backlog", NULL,
	 OFF(metrics_max_clients), 0},
	{"metrics_request_timeout", CONF_DURATION, {"1s", NULL}, 10, 60000, "",
	 "a metrics client's whole request head must arrive within this from its accept", NULL,
	 OFF(metrics_request_timeout), 0},
	{"metrics_exchange_timeout", CONF_DURATION, {"5s", NULL}, 10, 600000, "",
	 "a metrics connection is closed this long after its accept, answered or not", NULL,
	 OFF(metrics_exchange_timeout), 0},
	{"restart_backoff_reset", CONF_DURATION, {"10s", NULL}, 1, H, "",
	 "a worker that lived this long is restarted after 100ms again, not after its "
	 "doubled delay",
	 NULL, OFF(restart_backoff_reset), 0},
	{"crash_loop_deaths", CONF_INT, {"10", NULL}, 0, 100, "deaths",
	 "this many worker deaths within crash_loop_window stop the server with exit 1 (0 = "
	 "never)",
	 NULL, OFF(crash_loop_deaths), 0},
	{"crash_loop_window", CONF_DURATION, {"60s", NULL}, 1, D, "",
	 "the window crash_loop_deaths is counted in", NULL, OFF(crash_loop_window), 0},
	/* No default of its own: unset, it is shutdown_timeout's value (config_load). */
	{"handover_timeout", CONF_DURATION, {NULL, NULL}, 0, H, "",
	 "after an upgrade, how long the old generation serves its connections before it drains "
	 "them (unset = shutdown_timeout)",
	 NULL, OFF(handover_timeout), 0},
	{"upgrade_timeout", CONF_DURATION, {"30s", NULL}, 100, H, "",
	 "how long a new generation (SIGUSR2) has to report ready before it is killed", NULL,
	 OFF(upgrade_timeout), 0},
};
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

/* The mode decides the defaults, so it is found first: the command line's last mode=, else
 * the file's, else correct. */
static int config_mode(const struct conf *c, const struct server_config *cfg)
{
	return conf_was_set(c, "mode") ? cfg->mode : MODE_CORRECT;
}

int config_load(struct server_config *cfg, const struct config_args *args, char *err,
		size_t errlen)
{
	struct conf c;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (conf_init(&c, config_keys, config_nkeys, cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (args->file != NULL && conf_parse_file(&c, args->file, err, errlen) < 0)
		goto out;
	/* "--set:N" counts only the --set arguments; a shorthand names its own flag. */
	for (int i = 0, pos = 0; i < args->nsets; i++) {
		const char *origin = args->origins ? args->origins[i] : NULL;
		int rc_set = origin ? conf_set_arg_as(&c, args->sets[i], origin, err, errlen)
				    : conf_set_arg(&c, args->sets[i], ++pos, err, errlen);
		if (rc_set < 0)
			goto out;
	}
	if (conf_apply_defaults(&c, config_mode(&c, cfg), err, errlen) < 0)
		goto out;
	if (!conf_was_set(&c, "handover_timeout"))
		cfg->handover_timeout = cfg->shutdown_timeout;
	rc = 0;
out:
	conf_free(&c);
	return rc;
}

static long read_somaxconn(void)
{
	char buf[32];
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	long v = -1;

	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *end;
		v = strtol(buf, &end, 10);
		if (end == buf)
			v = -1;
	}
	fclose(f);
	return v;
}

/* Keys whose default differs by mode (def[1] set) are the mode's mechanisms: on in
 * correct mode (non-zero, yes), off in leaky mode. Lists in buf, as "key=value, ...", those
 * the file or --set turned the other way; returns how many. */
static int config_mixed_keys(const struct server_config *cfg, char *buf, size_t len)
{
	char val[CONF_STR_MAX + 8];
	size_t used = 0;
	int n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct conf_key *k = &config_keys[i];
		int on;

		if (k->def[1] == NULL)
			continue;
		conf_format_value(k, cfg, val, sizeof(val));
		on = strcmp(val, "0") != 0 && strcmp(val, "no") != 0;
		if (on == (cfg->mode == MODE_CORRECT))
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", n ? ", " : "",
						 k->name, val);
		n++;
	}
	return n;
}

/* A mode whose mechanisms the file or --set turned the other way is not the mode it says
 * (a leaky server with close_on_eof=yes leaks nothing): one line naming them. */
static int config_warn_mixed(const struct server_config *cfg)
{
	char keys[512];

	if (config_mixed_keys(cfg, keys, sizeof(keys)) == 0)
		return 0;
	if (cfg->mode == MODE_LEAKY)
		log_warn("mode=leaky, but %s (from the file or --set) restore correct-mode "
			 "mechanisms: this server does not leak as leaky mode does",
			 keys);
	else
		log_warn("mode=correct, but %s (from the file or --set) switch off correct-mode "
			 "mechanisms%s",
			 keys,
			 cfg->close_on_eof ? "" : "; close_on_eof=no leaves sockets in CLOSE_WAIT");
	return 1;
}

int config_warn(const struct server_config *cfg)
{
	int n = 0;
	long somaxconn = read_somaxconn();
	int64_t ka = cfg->keepalive_idle + cfg->keepalive_interval * cfg->keepalive_count;

	if (cfg->keepalive && cfg->user_timeout > 0 && cfg->user_timeout < ka) {
		log_warn("user_timeout (%lldms) is shorter than keepalive_idle + keepalive_interval * "
			 "keepalive_count (%lldms): TCP_USER_TIMEOUT then decides when an idle dead "
			 "peer is dropped, not keepalive_count (tcp(7))",
			 (long long)cfg->user_timeout, (long long)ka);
		n++;
	}
	if (somaxconn > 0 && cfg->backlog > somaxconn) {
		log_warn("backlog %lld is above net.core.somaxconn %ld: the kernel silently caps the "
			 "accept queue at %ld",
			 (long long)cfg->backlog, somaxconn, somaxconn);
		n++;
	}
	n += config_warn_mixed(cfg);
	if (cfg->heartbeat_timeout > 0 && cfg->heartbeat_timeout < 1000) {
		log_warn("heartbeat_timeout %lldms is under a second: slow peers will be cut off",
			 (long long)cfg->heartbeat_timeout);
		n++;
	}
	return n;
}

/* A key with no default left empty (metrics_listen) is unset: off. */
static int config_is_unset(const struct conf_key *k, const char *val)
{
	return k->def[0] == NULL && val[0] == '\0';
}

/* On stdout, in the file's own syntax, so `--check-config > f` then `-c f` loads the same
 * config back; an unset key is a comment (an empty value would not load). */
void config_print(const struct server_config *cfg)
{
	char val[CONF_STR_MAX + 8];

	printf("# effective config (echo-server --check-config); unset keys are comments\n");
	for (size_t i = 0; i < config_nkeys; i++) {
		conf_format_value(&config_keys[i], cfg, val, sizeof(val));
		if (config_is_unset(&config_keys[i], val))
			printf("# %s =\n", config_keys[i].name);
		else
			printf("%s = %s\n", config_keys[i].name, val);
	}
	fflush(stdout); /* before the warnings on stderr, for a terminal showing both */
}
