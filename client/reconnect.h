/* reconnect: what a server's close means for a connection, and when its replacement may
 * open (--reconnect, --reconnect-delay, --reconnect-rate). Pure functions; the driver
 * (client/driver.c) acts on them.
 *
 * A server's close is its FIN (recv() == 0) or its RST (ECONNRESET, or EPIPE on a send
 * after it) on a connection whose scenario still wanted it: connected, before its own
 * ending began (a half-close connection waiting for the server's FIN is past that). The
 * messages of such a connection with at least one byte written and not completely echoed
 * are `interrupted`, whatever the verdict: a close is never an echo mismatch (the bytes
 * that were echoed were each checked as they came, and a wrong one is a mismatch). */
#ifndef TEARDOWN_RECONNECT_H
#define TEARDOWN_RECONNECT_H

#include <stdint.h>

struct close_facts {
	int reconnect; /* --reconnect */
	int stopping;  /* the run or the connection's hold is over: finishing, not replaced */
	int held;      /* established and held (idle, silent) */
	int silent;    /* its scenario is silent */
};

enum close_verdict {
	CLOSE_FAILED,	 /* a failure (eof, or the RST's errno) */
	CLOSE_BY_SERVER, /* counted as closed_by_server; its slot goes on as after any end */
	CLOSE_RECONNECT	 /* closed_by_server, and the slot reconnects after the delay */
};

/* With --reconnect a server's close is never a failure: replaced while the connection is
 * still wanted, else only counted. Without it only a held silent connection's close is
 * expected (the server's idle timeout, what silent measures); any other is a failure. */
enum close_verdict reconnect_verdict(const struct close_facts *f);

/* The wait before reconnect number n (0, 1, ...) of connection id: uniform in
 * [delay/2, 3 delay/2) microseconds, a function of (id, n) alone, so that the
 * connections a drain closed at once reconnect spread over one delay. 0 for 0. */
int64_t reconnect_delay_us(int64_t delay_ms, uint64_t id, uint64_t n);

/* A token bucket: `rate` tokens a second, holding at most max(1, rate / 100) (a burst of
 * 10 ms), starting with one. rate 0 = unlimited. */
struct bucket {
	double rate, tokens, cap;
	int64_t t_us;
};

void bucket_init(struct bucket *b, double rate, int64_t now_us);
/* Takes a token: 0, or the microseconds until one is there (nothing taken). */
int64_t bucket_take(struct bucket *b, int64_t now_us);

#endif
