#include "config.h"
#include "log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field) offsetof(struct server_config, field)
#define H	   (3600LL * 1000) /* an hour in ms */
#define D	   (24 * H)

static const char *const mode_names[] = {"correct", "leaky", NULL};

/* Defaults are explained, key by key, in conf/server.conf. def[1] is leaky mode's default;
 * absent (NULL), the same as correct mode's. min and max absent: no range check. Each key
 * has one reload category (conf.h's CONF_F_RELOAD_*: applied at once, to new connections
 * only, or with new listeners or workers), which README, conf/server.conf and the man page
 * document. */
const struct conf_key config_keys[] = {
    {.name = "listen",
     .type = CONF_STRING,
     .def = {"127.0.0.1:7000"},
     .unit = "HOST:PORT",
     .help = "address to listen on (:P = 127.0.0.1:P, [::1]:P for IPv6, port 0 = any free port)",
     .offset = OFF(listen),
     .flags = CONF_F_ADDRESS | CONF_F_RELOAD_RESTART},
    {.name = "mode",
     .type = CONF_ENUM,
     .def = {"correct"},
     .help = "correct | leaky (defaults of every mechanism)",
     .choices = mode_names,
     .offset = OFF(mode),
     .flags = CONF_F_RELOAD_RESTART},
    {.name = "workers",
     .type = CONF_INT,
     .def = {"1"},
     .min = 1,
     .max = 64,
     .unit = "processes",
     .help = "processes sharing the port (SO_REUSEPORT only when > 1)",
     .offset = OFF(workers),
     .flags = CONF_F_RELOAD_RESTART},
    {.name = "backlog",
     .type = CONF_INT,
     .def = {"511"},
     .min = 1,
     .max = 65535,
     .unit = "connections",
     .help = "accept queue length (capped by net.core.somaxconn)",
     .offset = OFF(backlog),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "max_connections",
     .type = CONF_INT,
     .def = {"100000"},
     .min = 1,
     .max = 10000000,
     .unit = "connections",
     .help = "per worker; above it new connections are closed at once (reason overload)",
     .offset = OFF(max_connections),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "output_high_watermark",
     .type = CONF_SIZE,
     .def = {"64k"},
     .min = 1024,
     .max = 64LL << 20,
     .unit = "bytes",
     .help = "queued echo per connection above which reading from it pauses",
     .offset = OFF(output_high_watermark),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "read_size",
     .type = CONF_SIZE,
     .def = {"16k"},
     .min = 512,
     .max = 1LL << 20,
     .unit = "bytes",
     .help = "bytes read per readable event",
     .offset = OFF(read_size),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "write_timeout",
     .type = CONF_DURATION,
     .def = {"30s"},
     .min = 0,
     .max = D,
     .help = "close when queued echo makes no progress for this long",
     .offset = OFF(write_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "fin_timeout",
     .type = CONF_DURATION,
     .def = {"30s", "0"},
     .min = 0,
     .max = D,
     .help = "after the peer's FIN, the time allowed to flush its echo",
     .offset = OFF(fin_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "heartbeat_timeout",
     .type = CONF_DURATION,
     .def = {"60s", "0"},
     .min = 0,
     .max = D,
     .help = "close a connection that sends nothing for this long",
     .offset = OFF(heartbeat_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "keepalive",
     .type = CONF_BOOL,
     .def = {"yes", "no"},
     .help = "TCP keepalive on accepted sockets",
     .offset = OFF(keepalive),
     .flags = CONF_F_RELOAD_NEW_CONNS},
    {.name = "keepalive_idle",
     .type = CONF_DURATION,
     .def = {"60s"},
     .min = 1000,
     .max = 32767000,
     .help = "idle time before the first probe (TCP_KEEPIDLE)",
     .offset = OFF(keepalive_idle),
     .flags = CONF_F_WHOLE_SECONDS | CONF_F_RELOAD_NEW_CONNS},
    {.name = "keepalive_interval",
     .type = CONF_DURATION,
     .def = {"10s"},
     .min = 1000,
     .max = 32767000,
     .help = "time between probes (TCP_KEEPINTVL)",
     .offset = OFF(keepalive_interval),
     .flags = CONF_F_WHOLE_SECONDS | CONF_F_RELOAD_NEW_CONNS},
    {.name = "keepalive_count",
     .type = CONF_INT,
     .def = {"6"},
     .min = 1,
     .max = 127,
     .unit = "probes",
     .help = "unanswered probes before the kernel aborts (TCP_KEEPCNT)",
     .offset = OFF(keepalive_count),
     .flags = CONF_F_RELOAD_NEW_CONNS},
    {.name = "user_timeout",
     .type = CONF_DURATION,
     .def = {"130s", "0"},
     .min = 0,
     .max = D,
     .help = "TCP_USER_TIMEOUT: unacknowledged data older than this aborts the connection",
     .offset = OFF(user_timeout),
     .flags = CONF_F_RELOAD_NEW_CONNS},
    {.name = "reset_dead_peers",
     .type = CONF_BOOL,
     .def = {"yes", "no"},
     .help = "closes for heartbeat, write-timeout, fin-timeout send RST (SO_LINGER 0)",
     .offset = OFF(reset_dead_peers),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "early_close",
     .type = CONF_BOOL,
     .def = {"yes", "no"},
     .help = "watch EPOLLRDHUP (EV_CLOSED) while reading is paused",
     .offset = OFF(early_close),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "close_on_eof",
     .type = CONF_BOOL,
     .def = {"yes", "no"},
     .help = "close after recv() returns 0 and the echo is flushed (no = the CLOSE_WAIT bug)",
     .offset = OFF(close_on_eof),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "shutdown_timeout",
     .type = CONF_DURATION,
     .def = {"10s"},
     .min = 0,
     .max = H,
     .help = "graceful drain: connections still open after this are reset",
     .offset = OFF(shutdown_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "accept_pause",
     .type = CONF_DURATION,
     .def = {"100ms"},
     .min = 1,
     .max = 60000,
     .help = "how long the listener pauses after EMFILE/ENFILE",
     .offset = OFF(accept_pause),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "metrics_listen",
     .type = CONF_STRING,
     .unit = "HOST:PORT",
     .help = "Prometheus /metrics endpoint (:P = 127.0.0.1:P; unset = off)",
     .offset = OFF(metrics_listen),
     .flags = CONF_F_ADDRESS | CONF_F_RELOAD_RESTART},
    {.name = "census_interval",
     .type = CONF_DURATION,
     .def = {"1s"},
     .min = 100,
     .max = H,
     .help = "how often the server counts its port's sockets by state",
     .offset = OFF(census_interval),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "close_wait_alarm",
     .type = CONF_DURATION,
     .def = {"5s"},
     .min = 0,
     .max = D,
     .help = "warn about CLOSE_WAIT sockets older than this (0 = never)",
     .offset = OFF(close_wait_alarm),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "log_level",
     .type = CONF_ENUM,
     .def = {"info"},
     .help = "error | warn | info | debug",
     .choices = log_level_names, /* indexed by enum log_level */
     .offset = OFF(log_level),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "metrics_max_clients",
     .type = CONF_INT,
     .def = {"8"},
     .min = 1,
     .max = 1024,
     .unit = "connections",
     .help = "metrics connections served at once; more wait in the listener's backlog",
     .offset = OFF(metrics_max_clients),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "metrics_request_timeout",
     .type = CONF_DURATION,
     .def = {"1s"},
     .min = 10,
     .max = 60000,
     .help = "a metrics client's whole request head must arrive within this from its accept",
     .offset = OFF(metrics_request_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "metrics_exchange_timeout",
     .type = CONF_DURATION,
     .def = {"5s"},
     .min = 10,
     .max = 600000,
     .help = "a metrics connection is closed this long after its accept, answered or not",
     .offset = OFF(metrics_exchange_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "restart_backoff_reset",
     .type = CONF_DURATION,
     .def = {"10s"},
     .min = 1,
     .max = H,
     .help = "a worker that lived this long is restarted after 100ms again, not after its doubled "
	     "delay",
     .offset = OFF(restart_backoff_reset),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "crash_loop_deaths",
     .type = CONF_INT,
     .def = {"10"},
     .min = 0,
     .max = 100,
     .unit = "deaths",
     .help =
	 "this many worker deaths within crash_loop_window stop the server with exit 1 (0 = never)",
     .offset = OFF(crash_loop_deaths),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "crash_loop_window",
     .type = CONF_DURATION,
     .def = {"60s"},
     .min = 1,
     .max = D,
     .help = "the window crash_loop_deaths is counted in",
     .offset = OFF(crash_loop_window),
     .flags = CONF_F_RELOAD_NOW},
    /* Each worker's buffer is allocated at its start (log_start). */
    {.name = "log_buffer",
     .type = CONF_SIZE,
     .def = {"256k"},
     .min = LOG_BUFFER_MIN,
     .max = 256LL << 20,
     .unit = "bytes",
     .help = "log lines waiting for stderr; when full, lines are dropped and counted",
     .offset = OFF(log_buffer),
     .flags = CONF_F_RELOAD_RESTART},
    {.name = "drain_spread",
     .type = CONF_DURATION,
     .def = {"0"},
     .min = 0,
     .max = H,
     .help = "the final drain sends its FINs spread evenly over this window (0 = all at once)",
     .offset = OFF(drain_spread),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "drain_grace",
     .type = CONF_DURATION,
     .def = {"0"},
     .min = 0,
     .max = H,
     .help = "a drained connection's time from its turn: FIN by half of it, reset at its end "
	     "(0 = shutdown_timeout alone bounds it)",
     .offset = OFF(drain_grace),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "max_connection_age",
     .type = CONF_DURATION,
     .def = {"0"},
     .min = 0,
     .max = 30 * D,
     .help = "a connection older than this is ended like a drained one, reason max-age (0 = "
	     "off)",
     .offset = OFF(max_connection_age),
     .flags = CONF_F_RELOAD_NEW_CONNS},
    {.name = "max_connection_age_jitter",
     .type = CONF_PERCENT,
     .def = {"10%"},
     .min = 0,
     .max = 50,
     .help = "each connection's age is drawn within +- this of max_connection_age",
     .offset = OFF(max_connection_age_jitter),
     .flags = CONF_F_RELOAD_NEW_CONNS},
    {.name = "max_connection_age_grace",
     .type = CONF_DURATION,
     .def = {"30s"},
     .min = 0,
     .max = D,
     .help = "an aged connection's time to end: FIN by half of it, reset at its end (0 = no "
	     "bound of its own)",
     .offset = OFF(max_connection_age_grace),
     .flags = CONF_F_RELOAD_NOW},
    /* No default of its own: unset, it is shutdown_timeout's value (config_load). */
    {.name = "handover_timeout",
     .type = CONF_DURATION,
     .min = 0,
     .max = H,
     .help = "after an upgrade, how long the old generation serves its connections before it "
	     "drains them (unset = shutdown_timeout)",
     .offset = OFF(handover_timeout),
     .flags = CONF_F_RELOAD_NOW},
    {.name = "upgrade_timeout",
     .type = CONF_DURATION,
     .def = {"30s"},
     .min = 100,
     .max = H,
     .help = "how long a new generation (SIGUSR2) has to report ready before it is killed",
     .offset = OFF(upgrade_timeout),
     .flags = CONF_F_RELOAD_NOW},
};
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

/* The mode decides the defaults, so it is found first: the command line's last mode=, else
 * the file's, else correct. */
static int config_mode(const struct conf *c, const struct server_config *cfg)
{
	return conf_was_set(c, "mode") ? cfg->mode : MODE_CORRECT;
}

int config_load(struct server_config *cfg, const struct config_args *args, char *err, size_t errlen)
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
	if (config_check(cfg, &c, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	conf_free(&c);
	return rc;
}

/* Where the key set last among names was set, and its name; "defaults" when none was. */
static const char *config_latest(const struct conf *c, const char *const *names, size_t n,
				 const char **key)
{
	const char *where = NULL;
	unsigned best = 0, seq;

	*key = names[0];
	for (size_t i = 0; i < n; i++) {
		const char *w = conf_where(c, names[i], &seq);

		if (w != NULL && (where == NULL || seq > best)) {
			where = w;
			best = seq;
			*key = names[i];
		}
	}
	return where != NULL ? where : "defaults";
}

/* The drain must be able to give every connection its turn and its grace before
 * shutdown_timeout resets what is left: the last turn comes at drain_spread. */
int config_check(const struct server_config *cfg, const struct conf *c, char *err, size_t errlen)
{
	static const char *const names[] = {"shutdown_timeout", "drain_spread", "drain_grace"};
	char raw[CONF_ERR_MAX * 2], val[3][32];
	const char *key, *where;

	if (cfg->shutdown_timeout >= cfg->drain_spread + cfg->drain_grace)
		return 0;
	for (int i = 0; i < 3; i++)
		conf_format_value(conf_find(c, names[i]), cfg, val[i], sizeof(val[i]));
	where = config_latest(c, names, 3, &key);
	snprintf(raw, sizeof(raw),
		 "%s: %s: shutdown_timeout (%s) must be at least drain_spread + drain_grace (%s + "
		 "%s): the drain's last turn comes at drain_spread",
		 where, key, val[0], val[1], val[2]);
	conf_escape(raw, err, errlen);
	return -1;
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
		log_warn(
		    "user_timeout (%lldms) is shorter than keepalive_idle + keepalive_interval * "
		    "keepalive_count (%lldms): TCP_USER_TIMEOUT then decides when an idle dead "
		    "peer is dropped, not keepalive_count (tcp(7))",
		    (long long)cfg->user_timeout, (long long)ka);
		n++;
	}
	if (somaxconn > 0 && cfg->backlog > somaxconn) {
		log_warn(
		    "backlog %lld is above net.core.somaxconn %ld: the kernel silently caps the "
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
