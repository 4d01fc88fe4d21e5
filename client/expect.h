/* expect: --expect KEY=VALUE turns a run into a check of any TCP echo server.
 *
 * Keys:
 *   the counters of result_fields[] (client/result.c): attempted connected established
 *   completed failed cancelled closed_by_server echo_mismatch messages reconnects
 *   interrupted bytes_sent bytes_received crashed vanished dropped_from_server
 *   dropped_to_server (vanish: packets the drop rules discarded)
 *   failed.PHASE (connect, first_reply, echo, close), failed.KIND (ECONNREFUSED, deadline,
 *     eof, mismatch, any errno name)
 *   client.STATE, server.STATE (established, syn_sent, syn_recv, fin_wait1, fin_wait2,
 *     time_wait, close, close_wait, last_ack, listen, closing), client.total,
 *     server.total, server.accept_queue: the census at the end of the run
 *   kernel.COUNTER (TCPAbortOnClose, TCPAbortOnData, TCPAbortOnTimeout, TCPAbortOnMemory,
 *     TCPTimeWaitOverflow, ListenOverflows, ListenDrops: deltas over the run),
 *     kernel.sockstat.NAME (inuse, orphan, tw, alloc, mem: at the end); per network
 *     namespace, not per process (client/kernel.h)
 *   NAME_{p50,p90,p99,p99.9,max,min,mean}_ms for each histogram NAME of result_hists[]
 *   (connect, rtt, fin_to_fin, server_close)
 *   msgs_per_s, mb_per_s
 * Operators: = != <= >= < >. `=` is equality, except for latencies (_ms), where it is an
 * upper bound (<=), and for rates (_per_s), where it is a lower bound (>=).
 *
 * Unless a key about them is given, failed=0 and echo_mismatch=0 are expected anyway; an
 * expectation about some failures (failed.PHASE, failed.KIND) leaves the others expected
 * at 0: the implicit failed.unnamed=0 counts the failures of a phase and a kind that no
 * expectation names.
 * An expectation whose value cannot be known (the server's sockets are not visible from
 * here; a latency without samples) is "unknown": never a silent pass.
 * Exit status: 1 when one is violated, else 3 when one is unknown, else 0. */
#ifndef TEARDOWN_EXPECT_H
#define TEARDOWN_EXPECT_H

#include "result.h"

#include <stddef.h>

#define EXPECT_MAX 66

enum expect_op { EX_EQ, EX_NE, EX_LE, EX_GE, EX_LT, EX_GT };
enum expect_outcome { EX_PENDING, EX_OK, EX_VIOLATED, EX_UNKNOWN };

struct expectation {
	char key[64];
	enum expect_op op; /* after the defaults of `=` are applied */
	double value;
	char text[160]; /* as given, or "failed=0 (implicit)" */
	int implicit;
	enum expect_outcome outcome;
	double observed;
	char why[128]; /* for unknown */
};

struct expect_set {
	struct expectation e[EXPECT_MAX];
	int n;
	/* The phases and kinds that failed.PHASE / failed.KIND expectations name: the
	 * implicit failed.unnamed=0 covers every other failure. */
	unsigned char named_phase[PHASE_N];
	unsigned char named_kind[FAIL_KINDS];
};

/* Parses every text and adds the implicit ones. 0, or -1 with the reason. */
int expect_parse(struct expect_set *s, const char *const *texts, int n, char *err, size_t errlen);
void expect_eval(struct expect_set *s, const struct result *r);
/* 0 all hold, 1 one is violated, 3 none violated but one is unknown. */
int expect_status(const struct expect_set *s);
const char *expect_op_text(enum expect_op op);
const char *expect_outcome_name(enum expect_outcome o);

/* The value of a key in a result: 0, 1 when it cannot be known (reason in why), -1 when
 * the key does not exist. */
int expect_lookup(const struct result *r, const char *key, double *out, char *why, size_t whylen);

#endif
