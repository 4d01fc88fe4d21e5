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
	uint64_t attempted;	   /* connections started */
	uint64_t connected;	   /* TCP handshake completed */
	uint64_t established;	   /* first echo received */
	uint64_t completed;	   /* scenario finished as planned */
	uint64_t failed;	   /* ended by a failure (counted in fail[][]) */
	uint64_t cancelled;	   /* still connecting when the run ended */
	/* Connections the server closed (FIN or RST) that are not failures: silent ones while
	 * held, and with --reconnect any it closed while the scenario still wanted it. */
	uint64_t closed_by_server;
	uint64_t echo_mismatch;	   /* messages whose echo differed */
	uint64_t messages;	   /* echoes received complete and correct */
	uint64_t reconnects;	   /* connections opened to replace one the server closed */
	uint64_t interrupted;	   /* messages unanswered or partly echoed at the server's close */
	uint64_t bytes_sent, bytes_received;
	uint64_t by_scenario[SCEN_N]; /* connections started per scenario */
	struct dead_peers crashed;    /* crash connections closed in repair mode */
	struct dead_peers vanished;   /* vanish connections whose packets are dropped */
	/* vanish: packets the drop rules discarded (nftables counters, read at the end):
	 * what the server sent to vanished connections (probes, retransmissions, its close)
	 * and what they would have sent. */
	uint64_t dropped_from_server, dropped_to_server;
	uint64_t fail[PHASE_N][FAIL_KINDS];
	int64_t elapsed_us; /* from the first connect to the last connection's end */
	uint32_t parts;	    /* how many results were merged into this one */
	/* Progress, updated while running (read by the parent of --procs workers). */
	uint64_t open_now, closing_now;
	int done;
	struct hist connect_us;	     /* connect() to handshake complete */
	struct hist rtt_us;	     /* a message's first byte written to its echo's last read */
	struct hist fin_to_fin_us;   /* half-close: our FIN to the server's FIN */
	struct hist server_close_us; /* silent: our last byte to the server closing */
	struct census_view client, server; /* at the end of the run */
	/* The kernel's counters of this network namespace over the run: read once by the
	 * process that starts the run, never per worker (client/kernel.h). */
	struct kernel_view kernel;
};

void result_init(struct result *r);
/* dst += src: counters summed, histograms merged, elapsed the longer one (runs merged are
 * assumed to have run at the same time). The client censuses are summed (clients on
 * several machines); the server census takes each state's maximum, since several runs
 * against one server all see the same server sockets. An invisible census counts for
 * nothing. The kernel counters merge as kernel_merge() says (dst->parts == 0: the first). */
void result_merge(struct result *dst, const struct result *src);
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
