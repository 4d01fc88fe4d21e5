/* bin/echo-server: command line, config, then one server process (or `workers` of them).
 * Exit status: 0 success, 1 runtime failure, 2 usage or config error. */
#include "config.h"
#include "listener.h"
#include "log.h"
#include "sdnotify.h"
#include "server.h"
#include "upgrade.h"
#include "workers.h"

#include <limits.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

static const char usage_text[] =
    "usage: echo-server [-c FILE] [--mode correct|leaky] [--listen HOST:PORT]\n"
    "                   [--set key=value ...] [--check-config] [--port-file PATH]\n"
    "                   [--metrics-port-file PATH]\n"
    "  -c, --config FILE   config file (key = value; see conf/server.conf)\n"
    "  --mode MODE         correct (default) or leaky; sets the defaults of every mechanism\n"
    "  --listen HOST:PORT  shorthand for --set listen=HOST:PORT ([::1]:P for IPv6)\n"
    "  --set KEY=VALUE     override one key (after the file); repeatable\n"
    "  --check-config      validate; effective config on stdout, warnings on stderr; 0 or 2\n"
    "  --port-file PATH    write the bound port to PATH once listening\n"
    "  --metrics-port-file PATH  write the metrics endpoint's port to PATH once listening\n"
    "  -h, --help          this text;  --version  the version\n"
    "signals: SIGTERM/SIGINT graceful drain (a second one exits at once),\n"
    "         SIGUSR1 logs the counters as one JSON line,\n"
    "         SIGHUP reloads the config, SIGUSR2 upgrades the binary in place\n";

struct options {
	struct config_args conf;
	int check_config;
	struct server_params params; /* the port files, what a reload and an upgrade need */
	char exe[PATH_MAX];	     /* argv[0] resolved at start (upgrade.h) */
};

/* One line on stderr, exit status 2. */
static int usage_error(const char *fmt, const char *arg)
{
	log_plain("echo-server: ");
	log_plain(fmt, arg);
	log_plain(" (see --help)\n");
	return 2;
}

/* --listen X and --mode X become "listen=X" / "mode=X" entries among the --set values, in
 * command-line order, so the last one given wins. */
static const char *shorthand(const char *key, const char *value)
{
	size_t n = strlen(key) + strlen(value) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s=%s", key, value);
	return s;
}

enum {
	OPT_MODE = 256,
	OPT_LISTEN,
	OPT_SET,
	OPT_CHECK,
	OPT_PORT_FILE,
	OPT_VERSION,
	OPT_METRICS_PORT_FILE
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"mode", required_argument, NULL, OPT_MODE},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"set", required_argument, NULL, OPT_SET},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"metrics-port-file", required_argument, NULL, OPT_METRICS_PORT_FILE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
	int opt;

	o->conf.sets = calloc((size_t)argc, sizeof(char *));
	o->conf.origins = calloc((size_t)argc, sizeof(char *));
	if (o->conf.sets == NULL || o->conf.origins == NULL)
		return 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:h", long_opts, NULL)) != -1) {
		const char *s = optarg, *origin = NULL;
		switch (opt) {
		case 'c':
			o->conf.file = optarg;
			continue;
		case OPT_CHECK:
			o->check_config = 1;
			continue;
		case OPT_PORT_FILE:
			o->params.port_file = optarg;
			continue;
		case OPT_METRICS_PORT_FILE:
			o->params.metrics_port_file = optarg;
			continue;
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) != 0; /* asked: stdout */
		case OPT_VERSION:
			log_plain("echo-server %s\n", TEARDOWN_VERSION);
			return 0;
		case OPT_MODE:
			s = shorthand("mode", optarg), origin = "--mode";
			break;
		case OPT_LISTEN:
			s = shorthand("listen", optarg), origin = "--listen";
			break;
		case OPT_SET:
			break;
		case ':':
			return usage_error("option %s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
		if (s == NULL)
			return 1;
		o->conf.origins[o->conf.nsets] = origin;
		o->conf.sets[o->conf.nsets++] = s;
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	return -1;
}

/* A lone server serves one adopted listener; more (from a parent that had workers) are
 * closed: their queues go to the first only with net.ipv4.tcp_migrate_req=1. */
static void run_alone_adopted(struct server_params *p)
{
	if (p->nadopted == 0)
		return;
	p->listen_fd = p->adopted[0];
	if (p->nadopted > 1)
		log_warn("LISTEN_FDS: %d listeners passed, workers=1 serves one: %d closed",
			 p->nadopted, p->nadopted - 1);
	for (int i = 1; i < p->nadopted; i++)
		close(p->adopted[i]);
	p->nadopted = 0;
}

static int run(const struct server_config *cfg, struct server_params *params)
{
	struct server srv;
	int code;

	if (cfg->workers > 1)
		return workers_run(cfg, params);
	run_alone_adopted(params);
	if (server_init(&srv, cfg, params, &code) < 0) {
		server_free(&srv);
		return code; /* a new generation's ready pipe closes: "exited before ready" */
	}
	upgrade_report_ready(params->ready_fd);
	sdnotify_ready();
	code = server_run(&srv);
	server_free(&srv);
	return code;
}

static void options_free(struct options *o)
{
	for (int i = 0; i < o->conf.nsets; i++)
		if (o->conf.origins[i] != NULL) /* a shorthand's "key=value" was allocated */
			free((char *)o->conf.sets[i]);
	free(o->conf.sets);
	free(o->conf.origins);
}

/* Config, then --check-config or the server. Returns the exit status. */
static int configure_and_run(struct options *o)
{
	struct server_config cfg;
	char err[CONF_ERR_MAX];

	if (config_load(&cfg, &o->conf, err, sizeof(err)) < 0) {
		log_plain("echo-server: %s\n", err);
		return 2;
	}
	log_set_level((enum log_level)cfg.log_level); /* choices: log_level_names */
	if (o->check_config) {
		config_print(&cfg);
		config_warn(&cfg);
		/* The output is meant to be saved as a config file: a short write is a failure. */
		if (fflush(stdout) != 0 || ferror(stdout)) {
			log_error("--check-config: writing the config to stdout: %s",
				  strerror(errno));
			return 1;
		}
		return 0;
	}
	config_warn(&cfg);
	/* A write to a peer that reset must fail with EPIPE, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	/* From here on no line waits for stderr. With workers, the supervisor starts its
	 * writer once its first workers are ready (workers_start), so no fork of those happens
	 * while the thread is starting up; log.c's fork handlers leave each child without the
	 * writer thread, and workers.c starts the child's own. */
	if (cfg.workers <= 1)
		log_start((size_t)cfg.log_buffer);
	o->params.ready_fd = upgrade_take_ready_fd();
	o->params.generation = upgrade_take_generation();
	o->params.start_time_s = (unsigned long long)time(NULL);
	if (o->params.generation > 1)
		log_info("generation %u (an upgrade)", o->params.generation);
	listener_adopt(&cfg, &o->params);
	return run(&cfg, &o->params);
}

int main(int argc, char **argv)
{
	struct options o = {.params = SERVER_PARAMS_INIT};
	int code;

	/* Before any open: with fd 2 closed, the listening socket would become fd 2 and
	 * receive every log line. Nothing can be said if this fails. */
	if (log_std_fds() < 0)
		return 1;
	log_init("echo-server", LOG_LVL_INFO);
	code = parse_args(argc, argv, &o);
	o.params.conf_args = &o.conf;
	o.params.argv = argv;
	if (upgrade_resolve_exe(argv[0], o.exe, sizeof(o.exe)) == 0)
		o.params.exe = o.exe; /* else an upgrade is refused with a log line */
	if (code < 0)
		code = configure_and_run(&o);
	options_free(&o);
	log_flush_suppressed();
	log_finish(LOG_FINISH_MS);
	return code;
}
