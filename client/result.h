/* result: what one run measured, mergeable exactly.
 *
 * Counters add, histograms merge bucket by bucket (common/hist.c), failures are a table
 * of phase x kind; so the result of several processes (--procs) or machines
 * (`load-client merge`) is exactly the result of the combined run. A struct result holds
 * no pointers: a worker process fills one in memory shared with its parent. */
#ifndef TEARDOWN_RESULT_H
#define TEARDOWN_RESULT_H

#include "census.h"
#include "hist.h"
#include "kernel.h"
#include "scenario.h"

#include <stdint.h>

/* Where in its life a connection failed. */
enum phase {
	PHASE_CONNECT,	   /* socket(), bind(), connect() until the handshake completed */
	PHASE_FIRST_REPLY, /* connected, its first echo not complete yet */
	PHASE_ECHO,	   /* established, exchanging messages */
	PHASE_CLOSE,	   /* its scenario's ending (half-close: the echo after the FIN, EOF) */
	PHASE_N
};

/* Failure kinds: an errno value (below FAIL_ERRNO_MAX) or one of these. */
#define FAIL_ERRNO_MAX 200
enum {
	FAIL_DEADLINE = FAIL_ERRNO_MAX, /* our own connect or reply deadline passed */
	FAIL_EOF,			/* the server closed before the scenario's end */
	FAIL_MISMATCH,			/* an echo byte differed from what was sent */
	FAIL_CRASH_PORTS, /* crash: every source port was used by an earlier crash (crashport.h) */
	FAIL_BACKLOG,	  /* open loop: more messages due and unsent than --max-backlog */
	FAIL_KINDS
};

/* Why a census was not counted (census_view.unseen). */
enum census_unseen {
	UNSEEN_UNKNOWN,	       /* not said (a result written before the reasons were) */
	UNSEEN_REMOTE,	       /* not an address of this host: another host or namespace */
	UNSEEN_NO_LISTENER,    /* an address of this host, but nothing listens on the port */
	UNSEEN_OTHER_LISTENER, /* only listeners of the port on another address or family */
	UNSEEN_NO_CENSUS,      /* sock_diag could not be opened or read */
	UNSEEN_N
};

struct census_view {
	int visible; /* 1: counted here; 0: not, for the reason in unseen */
	int unseen;  /* enum census_unseen */
	int port;    /* the port it is (or would be) of; 0: not said */
	struct census_counts c;
};

/* "remote", "no_listener", ... (the JSON's names), or NULL for UNSEEN_UNKNOWN. */
const char *census_unseen_key(int unseen);
int census_unseen_parse(const char *key);
/* Why v was not counted, for a reader: "nothing listens on port 7000 here", ... */
const char *census_unseen_text(const struct census_view *v, char *buf, size_t len);

/* When peers of this run died (crash, vanish): wall-clock times, so the results of
 * several processes or machines merge (earliest first, latest last) and compare with a
 * server's log. */
struct dead_peers {
	uint64_t count;
	int64_t first_unix_us, last_unix_us; /* 0 while count is 0 */
};

struct result {
	/* The counters of result_fields[] (result.c), which says what each one counts. */
	uint64_t attempted, connected, established, completed, failed, cancelled;
	uint64_t closed_by_server, echo_mismatch, messages, reconnects, interrupted;
	uint64_t bytes_sent, bytes_received;
	uint64_t msgs_due, late_sends, unsent, late_starts, cpu_us, cpu_saturated_s;
	uint64_t ramped_down, warmup_failed;
	uint64_t by_scenario[SCEN_N]; /* connections started per scenario */
	struct dead_peers crashed, vanished;
	uint64_t dropped_from_server, dropped_to_server;
	uint64_t fail[PHASE_N][FAIL_KINDS];
	int64_t elapsed_us; /* from the first connect to the last connection's end */
	uint32_t parts;	    /* how many results were merged into this one */
	/* Progress, updated while running (read by the parent of --procs workers). */
	uint64_t open_now, closing_now, connecting_now;
	int done;
	/* The histograms of result_hists[] (result.c). */
	struct hist connect_us, rtt_us, fin_to_fin_us, server_close_us;
	struct hist latency_us, late_us, send_lag_us, connect_due_us;
	struct census_view client, server; /* at the end of the run */
	/* The kernel's counters of this network namespace over the run: read once by the
	 * process that starts the run, never per worker (client/kernel.h). */
	struct kernel_view kernel;
};

/* A worker that used this share of a CPU in a second or more is saturated then: its own
 * timing (its send lag, the echoes it reads late) may be what a run measured. */
#define RESULT_CPU_SATURATED 0.9

/* One counter of a result, described once: result_merge, the progress sum (monitor.c),
 * the JSON writer and reader (report.c) and the --expect keys (expect.c) walk
 * result_fields[] rather than naming the counters. Adding a counter: a member of struct
 * result and a row of the table. */
enum result_kind {
	RK_COUNT, /* uint64_t, summed */
	RK_DEAD,  /* struct dead_peers: its count is the value; merged earliest-first/latest-last */
};
/* Where a counter is in the JSON document (report.h). */
enum result_group {
	RG_COUNTS,     /* "counts": in every result */
	RG_DEAD_PEERS, /* "dead_peers": absent in results from before crash and vanish */
	RG_LIVE,       /* progress while running: summed, neither written nor an --expect key */
	RG_N
};
/* RF_OPTIONAL: absent in results written before the counter existed; read as 0. */
#define RF_OPTIONAL 1u
struct result_field {
	const char *key;  /* the --expect key */
	const char *json; /* the member name in its JSON group */
	enum result_group group;
	enum result_kind kind;
	size_t offset;
	unsigned flags;
	const char *help;
};
extern const struct result_field result_fields[];
extern const size_t result_nfields;
/* The JSON object of a group ("counts", "dead_peers"); NULL for RG_LIVE. */
const char *result_group_json(enum result_group g);
/* The value of a counter: a uint64_t, or a dead_peers' count. */
uint64_t result_field_value(const struct result *r, const struct result_field *f);

/* The latency histograms, described once like the counters: the JSON's "hist" member
 * `name`_us, the summary's and the --expect keys' `name` (connect_p99_ms), the table's
 * row `label`. */
struct result_hist {
	const char *name;
	const char *label;
	size_t offset;
	unsigned flags; /* RF_OPTIONAL: absent in older results, read as empty */
	const char *help;
};
extern const struct result_hist result_hists[];
extern const size_t result_nhists;
const struct hist *result_hist_of(const struct result *r, const struct result_hist *h);
struct hist *result_hist_at(struct result *r, const struct result_hist *h);

void result_init(struct result *r);
/* dst += src: counters summed, histograms merged, elapsed the longer one (runs merged are
 * assumed to have run at the same time). The client censuses are summed (clients on
 * several machines); the server census takes each state's maximum, since several runs
 * against one server all see the same server sockets. An invisible census counts for
 * nothing. The kernel counters merge as kernel_merge() says (dst->parts == 0: the first). */
void result_merge(struct result *dst, const struct result *src);
/* dst += src for the counters of result_fields[] only (the live progress of workers). */
void result_add_counters(struct result *dst, const struct result *src);
/* Counts one failure. */
void result_fail(struct result *r, enum phase ph, int kind);
/* Counts peers that died at unix_us (wall clock, microseconds). */
void result_dead(struct dead_peers *d, uint64_t n, int64_t unix_us);
void result_dead_merge(struct dead_peers *dst, const struct dead_peers *src);
/* The wall clock in microseconds since 1970. */
int64_t result_unix_us(void);

const char *phase_name(int ph);
int phase_parse(const char *s);
/* "ECONNREFUSED", "deadline", "eof", "mismatch"; "E123" for an errno without a name. */
const char *fail_kind_name(int kind, char *buf, size_t len);
int fail_kind_parse(const char *s);
/* Sum of fail[ph][*], or of fail[*][kind]. */
uint64_t result_fail_phase(const struct result *r, int ph);
uint64_t result_fail_kind(const struct result *r, int kind);

#endif
