/* config: the server's keys (one table drives the parser, --set, --check-config and the
 * documentation in conf/server.conf) and the struct they fill. */
#ifndef TEARDOWN_SERVER_CONFIG_H
#define TEARDOWN_SERVER_CONFIG_H

#include "conf.h"

#include <stdint.h>

enum server_mode { MODE_CORRECT = 0, MODE_LEAKY = 1 };

struct server_config {
	char listen[CONF_STR_MAX];
	int mode;
	int64_t workers;
	int64_t backlog;
	int64_t max_connections;
	int64_t output_high_watermark; /* bytes */
	int64_t read_size;	       /* bytes */
	int64_t write_timeout;	       /* ms; 0 = off (every duration is in ms) */
	int64_t fin_timeout;
	int64_t heartbeat_timeout;
	int keepalive;
	int64_t keepalive_idle;
	int64_t keepalive_interval;
	int64_t keepalive_count;
	int64_t user_timeout;
	int reset_dead_peers;
	int early_close;
	int close_on_eof;
	int64_t shutdown_timeout;
	int64_t accept_pause;
	char metrics_listen[CONF_STR_MAX];
	int64_t census_interval;
	int64_t close_wait_alarm;
	int log_level;
	int64_t metrics_max_clients;
	int64_t metrics_request_timeout;  /* ms, accept to a complete request head */
	int64_t metrics_exchange_timeout; /* ms, accept to close */
	int64_t restart_backoff_reset;	  /* ms a worker must live for its restart delay to reset */
	int64_t crash_loop_deaths;	  /* worker deaths within crash_loop_window: exit 1 */
	int64_t crash_loop_window;	  /* ms */
	int64_t log_buffer;		  /* bytes */
	int64_t drain_spread;		  /* ms over which the final drain's FINs are spread */
	int64_t drain_grace;		  /* ms one drained connection may take after its turn */
	int64_t max_connection_age;	  /* ms; 0 = off */
	int64_t max_connection_age_jitter; /* percent, +- around max_connection_age */
	int64_t max_connection_age_grace;  /* ms an aged connection may take to end */
	int64_t handover_timeout; /* ms an old generation serves its connections after an upgrade */
	int64_t upgrade_timeout;  /* ms a new generation has to report ready */
};

extern const struct conf_key config_keys[];
extern const size_t config_nkeys;

/* The command line's config part, in the order given. */
struct config_args {
	const char *file;     /* -c FILE, or NULL */
	const char **sets;    /* "key=value" from --set, --listen, --mode */
	const char **origins; /* per entry: "--mode", "--listen", or NULL for a --set */
	int nsets;
};

/* The file, then the mode's defaults for the keys it left unset, then the command line
 * (precedence: command line > file > mode default, as conf/server.conf says). On error,
 * err holds "FILE:LINE: KEY: reason" or "--set:N: KEY: reason" and -1 is returned. */
int config_load(struct server_config *cfg, const struct config_args *args, char *err,
		size_t errlen);
/* The rules between keys (shutdown_timeout >= drain_spread + drain_grace). 0, or -1 with
 * "PLACE: KEY: reason" in err, PLACE being where the key set last among them was set.
 * config_load applies them. */
int config_check(const struct server_config *cfg, const struct conf *c, char *err, size_t errlen);
/* Warnings about settings that contradict each other or that the kernel will change;
 * each is logged. Returns how many there were. */
int config_warn(const struct server_config *cfg);
/* Every key with its effective value, for --check-config: on stdout, loadable with -c. */
void config_print(const struct server_config *cfg);

#endif
