/* options: the load client's command line.
 *
 * Every numeric flag is described once in a table (name, type, default, range, unit) and
 * parsed by common/conf.c's value parser, so durations and sizes read like the server's
 * config ("250ms", "10s", "64k"). `--flag value` and `--flag=value` are both accepted. */
#ifndef TEARDOWN_OPTIONS_H
#define TEARDOWN_OPTIONS_H

#include "scenario.h"
#include "schedule.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define OPT_MAX_EXPECT 64
#define OPT_PATH_MAX   512

struct client_opts {
	/* where */
	char server[300];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int port;
	/* --sources A-B: IPv4 source addresses (host byte order), bound round robin */
	uint32_t src_first, src_last;
	int nsources; /* 0 = let the kernel choose */
	/* The source address of crash connections: --crash-source, or in a mix the last
	 * address of --sources (taken out of the range above). 0 = none. */
	struct sockaddr_storage crash_src;
	socklen_t crash_srclen;

	/* what */
	int scenario; /* enum scenario */
	struct mix mix;

	/* load shape (durations in ms, sizes in bytes) */
	int64_t connections; /* concurrent target */
	int64_t rate;	     /* new connections per second, 0 = as fast as possible */
	int64_t duration_ms; /* 0 = one pass: each of `connections` runs its scenario once */
	int64_t hold_ms;     /* idle / silent without --duration */
	int64_t messages;
	int64_t size;
	int64_t pipeline;
	int64_t connect_timeout_ms;
	int64_t reply_timeout_ms;
	int64_t heartbeat_ms;
	/* idle: heartbeats wait for the next multiple of this on CLOCK_MONOTONIC (0: none),
	 * so that every process sends its due heartbeats in one wake-up, and the server's
	 * workers receive them together (client/conn.c, conn_heartbeat_due) */
	int64_t heartbeat_tick_ms;
	int64_t max_connecting; /* handshakes (connect + first echo) in flight per process */
	int64_t backoff_ms;	/* a slot whose connect failed waits this long (--duration) */
	int64_t settle_ms;	/* at the end, how long to wait for sockets to settle */
	int64_t keepalive[3];	/* idle, interval (ms, whole seconds), count; [0] = 0: off */
	int64_t user_timeout_ms;
	int64_t procs;
	/* --reconnect: a connection the server closed is replaced by one that goes on with
	 * its messages (client/reconnect.h), after a delay, at most reconnect_rate a second
	 * (0: unlimited; split between the workers like --rate). */
	int reconnect;
	int64_t reconnect_delay_ms;
	int64_t reconnect_rate;
	/* Open loop (client/schedule.h): messages on a schedule, --message-rate per connection
	 * or --total-message-rate split between them (0: closed loop, the next message when
	 * the previous echo is back); --arrivals (enum arrivals); --max-backlog: messages due
	 * and not sent that a connection may have before it fails with `backlog`. */
	int64_t message_rate, total_message_rate;
	int arrivals;
	int64_t max_backlog;
	/* --stages: the concurrent-connection target ramps linearly (connections is its
	 * highest, duration its length); --rate-stages ramps --rate. n = 0: not given. */
	struct stages stages, rate_stages;
	char stages_text[256], rate_stages_text[256];
	int64_t warmup_ms; /* left out of every histogram and rate */
	/* --start-at (wall clock, us; 0: at once), --time-reference (client/clockref.h) */
	int64_t start_at_us;
	char time_reference[OPT_PATH_MAX];

	/* reporting */
	int json;
	int progress; /* -1 = when stderr is a tty */
	char timeline[OPT_PATH_MAX];
	char plot[OPT_PATH_MAX];
	char metrics_url[OPT_PATH_MAX]; /* --metrics: the server's /metrics, for the timeline */
	const char *expect[OPT_MAX_EXPECT];
	int nexpect;
};

/* Parses the arguments of a run (argv[0] is the program). 0, or -1 after printing the
 * reason and where the usage is to stderr (exit status 2). */
int options_parse(struct client_opts *o, int argc, char **argv);
/* The usage asked for (--help): on stdout, every flag with its default. */
void options_usage(void);
/* One line on stderr after a usage error: where the full usage is. */
void options_usage_short(void);

/* A server's port (--server, states --port): 1 .. 65535, digits only; else -1, and the
 * message is OPTIONS_PORT_RULE. */
#define OPTIONS_PORT_RULE "the port must be a number from 1 to 65535"
int options_parse_port(const char *s);

/* Whether a --timeline path is the JSON lines form (F.jsonl), not CSV. */
int options_timeline_jsonl(const char *path);

#endif
