/* Unit test of conn_decide (server/conn.c), the one decision a connection makes after
 * every event: wait, pause or resume reading, start fin_timeout, ignore the EOF, send
 * our FIN, or close (eof, shutdown, max-age).
 *
 * A breadth-first search walks every situation the events can reach from the accept
 * (flags, queued echo, and what the kernel holds: unread bytes, the peer's FIN), for each
 * combination of the config booleans the decision reads (close_on_eof, early_close). The
 * events are modelled on conn.c's handlers: each records its event (bytes queued, the
 * EOF, the FIN from EPOLLRDHUP, the drain, max_connection_age, half the grace gone, bytes
 * written) and then asks conn_decide until
 * the answer is to wait; the model applies each answer as conn.c does (one flag). At
 * every step the answer is compared with expected_action(), the rules written here from
 * DESIGN.md ("Correct mode must", "Leaky mode", the drain) and the README (close reasons,
 * the drain in "Copying the shutdown code"), not read off conn_decide; every state is
 * checked against the invariants (conn_facts_broken and this file's own at_rest_ok), and
 * every combination of flags and queue level that is never reached must break one of the
 * invariants, on which conn_decide asserts (checked in a child process), or be one of two
 * named cases that only the kernel's order or the watermark rule out (unreached_why),
 * which conn_decide answers by the rules. */
#include "server/conn.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* The queued echo, in four levels around output_high_watermark (HIGH here): none, at most
 * half of it (where a pause ends), above half, at or above it (where reading pauses). */
enum { Q_NONE, Q_LOW, Q_MID, Q_HIGH, Q_LEVELS };
#define HIGH 64
static const size_t q_bytes[Q_LEVELS] = {0, HIGH / 2, HIGH / 2 + 1, HIGH}; /* the boundaries */

#define NFLAGS 256 /* every combination of the eight enum conn_flag bits */

/* A connection between two events and what the kernel holds for it. */
struct sit {
	unsigned flags;
	int q;	    /* Q_* */
	int unread; /* bytes wait in the receive queue */
	int fin;    /* the peer's FIN has arrived (behind those bytes) */
};

#define NSITS (NFLAGS * Q_LEVELS * 2 * 2)

struct cfg {
	bool close_on_eof;
	bool early_close;
};

struct walk {
	struct cfg cfg;
	bool seen[NSITS];		/* at rest, queued for the search */
	bool decided[NFLAGS][Q_LEVELS]; /* given to conn_decide */
	int actions[CONN_ACT_CLOSE_MAX_AGE + 1];
	int rest; /* situations at rest */
	struct sit queue[NSITS];
	int head, tail;
};

static int sit_index(const struct sit *s)
{
	return (((int)s->flags * Q_LEVELS + s->q) * 2 + s->unread) * 2 + s->fin;
}

static bool has(unsigned flags, unsigned f)
{
	return (flags & f) != 0;
}

static struct conn_facts facts_of(const struct cfg *cfg, unsigned flags, int q)
{
	return (struct conn_facts){.flags = flags,
				   .out = q_bytes[q],
				   .high = HIGH,
				   .unread = -1,
				   .close_on_eof = cfg->close_on_eof,
				   .early_close = cfg->early_close};
}

/* The rules, as the project states them, phase by phase of a connection's life.
 * f->unread is what SIOCINQ said, -1 when not asked yet. */
static enum conn_action expected_action(const struct conn_facts *f)
{
	unsigned fl = f->flags;

	/* issue 18: a connection older than max_connection_age is "closed gracefully ...
	 * like a drained one: reason max-age". */
	enum conn_action drained =
	    has(fl, CONN_AGED) ? CONN_ACT_CLOSE_MAX_AGE : CONN_ACT_CLOSE_SHUTDOWN;

	/* DESIGN, drain: "shutdown(SHUT_WR), read and discard to the peer's EOF, then
	 * close"; README: reason shutdown (graceful drain). */
	if (has(fl, CONN_SHUT_WR))
		return has(fl, CONN_EOF_READ) ? drained : CONN_ACT_WAIT;
	/* DESIGN: "a peer that never reads: bounded output (high watermark pauses reading
	 * from it)"; conn.h: reading resumes once the echo is down to half the watermark. */
	if (has(fl, CONN_PAUSED))
		return f->out * 2 <= f->high ? CONN_ACT_RESUME : CONN_ACT_WAIT;
	/* DESIGN, correct mode: "peer FIN (recv()==0): finish sending what is queued for that
	 * peer, then close()"; "a peer that half-closed still receives all of its echo, within
	 * fin_timeout". Leaky: "ignores recv()==0 (the socket stays in CLOSE_WAIT)", counted
	 * as eof_ignored (README). The drain: "A connection whose EOF was ignored gets its
	 * queued echo first, then close() (its FIN)" (README), reason shutdown. */
	if (has(fl, CONN_EOF_READ)) {
		if (f->close_on_eof && f->out == 0)
			return CONN_ACT_CLOSE_EOF; /* no fin_timeout needed: closed now */
		if (!has(fl, CONN_PEER_FIN))
			return CONN_ACT_NOTE_FIN;
		if (!f->close_on_eof && !has(fl, CONN_EOF_IGNORED))
			return CONN_ACT_IGNORE_EOF;
		if (has(fl, CONN_EOF_IGNORED) && has(fl, CONN_DRAINING) && f->out == 0)
			return drained;
		return CONN_ACT_WAIT; /* the echo flushes */
	}
	if (f->out >= f->high)
		return CONN_ACT_PAUSE;
	/* README, the drain: "each connection sends its FIN at a quiet point (nothing
	 * queued, nothing unread: every byte received has been echoed)". Issue 18: "A
	 * connection that is not quiet within grace/2 gets its FIN once its read bytes are
	 * echoed". */
	if (has(fl, CONN_DRAINING) && f->out == 0) {
		if (has(fl, CONN_FIN_DUE))
			return CONN_ACT_SHUT_WR;
		if (f->unread < 0)
			return CONN_ACT_ASK_UNREAD;
		return f->unread == 0 ? CONN_ACT_SHUT_WR : CONN_ACT_WAIT;
	}
	return CONN_ACT_WAIT;
}

/* A connection waiting for its next event, by DESIGN.md: output bounded ("memory per
 * connection stays bounded"); EV_CLOSED armed only beside EV_WRITE ("EV_CLOSED is never
 * armed alone": paused means echo queued); "CLOSE_WAIT lasts only as long as that
 * flush"; an EOF read is either flushing under fin_timeout or ignored and counted; our FIN
 * only after every byte received was echoed. */
static bool at_rest_ok(const struct cfg *cfg, const struct sit *s)
{
	unsigned fl = s->flags;

	if (has(fl, CONN_PAUSED) ? s->q == Q_NONE : s->q == Q_HIGH && !has(fl, CONN_EOF_READ))
		return false;
	if (has(fl, CONN_EOF_READ) && !has(fl, CONN_PEER_FIN))
		return false;
	if (has(fl, CONN_EOF_READ) && cfg->close_on_eof && s->q == Q_NONE)
		return false;
	if (has(fl, CONN_EOF_READ) && !cfg->close_on_eof && !has(fl, CONN_EOF_IGNORED))
		return false;
	if (has(fl, CONN_SHUT_WR) && (s->q != Q_NONE || has(fl, CONN_EOF_READ)))
		return false;
	/* draining, nothing queued, no FIN of ours yet: only while input waits, and not
	 * once half the grace is gone */
	if (has(fl, CONN_DRAINING) && !has(fl, CONN_SHUT_WR) && s->q == Q_NONE &&
	    (!s->unread || has(fl, CONN_FIN_DUE)))
		return false;
	/* the ending's reason and its due FIN belong to a drain */
	if (has(fl, CONN_AGED | CONN_FIN_DUE) && !has(fl, CONN_DRAINING))
		return false;
	return true;
}

/* What the model does with an answer: the one flag conn.c's action sets or clears. */
static unsigned apply(unsigned flags, enum conn_action a)
{
	switch (a) {
	case CONN_ACT_PAUSE:
		return flags | CONN_PAUSED;
	case CONN_ACT_RESUME:
		return flags & ~(unsigned)CONN_PAUSED;
	case CONN_ACT_NOTE_FIN:
		return flags | CONN_PEER_FIN;
	case CONN_ACT_IGNORE_EOF:
		return flags | CONN_EOF_IGNORED;
	case CONN_ACT_SHUT_WR:
		return flags | CONN_SHUT_WR;
	default:
		fail_msg("apply: %s changes no flag", conn_action_name(a));
	}
	return flags;
}

static void describe(char *buf, size_t len, const struct walk *w, const struct sit *s)
{
	snprintf(buf, len, "close_on_eof=%d early_close=%d flags=%#x q=%d unread=%d fin=%d",
		 w->cfg.close_on_eof, w->cfg.early_close, s->flags, s->q, s->unread, s->fin);
}

/* conn_settle in the model: ask, compare, apply, until the answer is to wait (the
 * situation is queued for the search) or a close. */
static void settle(struct walk *w, struct sit s)
{
	struct conn_facts f = facts_of(&w->cfg, s.flags, s.q);
	char where[160];
	int steps;

	for (steps = 0; steps < 16; steps++) {
		enum conn_action a, e;
		const char *broken = conn_facts_broken(&f, false);

		describe(where, sizeof(where), w, &s);
		if (broken != NULL)
			fail_msg("reachable but broken (%s): %s", broken, where);
		w->decided[s.flags][s.q] = true;
		a = conn_decide(&f);
		e = expected_action(&f);
		if (a != e)
			fail_msg("%s unread-asked=%d: conn_decide %s, the rules %s", where,
				 f.unread, conn_action_name(a), conn_action_name(e));
		w->actions[a]++;
		if (a == CONN_ACT_CLOSE_EOF || a == CONN_ACT_CLOSE_SHUTDOWN ||
		    a == CONN_ACT_CLOSE_MAX_AGE)
			return;
		if (a == CONN_ACT_ASK_UNREAD) {
			f.unread = s.unread;
			continue;
		}
		if (a == CONN_ACT_WAIT) {
			if (conn_facts_broken(&f, true) != NULL || !at_rest_ok(&w->cfg, &s))
				fail_msg("at rest but broken (%s): %s", conn_facts_broken(&f, true),
					 where);
			if (!w->seen[sit_index(&s)]) {
				w->seen[sit_index(&s)] = true;
				w->queue[w->tail++] = s;
				w->rest++;
			}
			return;
		}
		s.flags = apply(s.flags, a);
		f = facts_of(&w->cfg, s.flags, s.q);
	}
	fail_msg("no rest after 16 answers: %s", where);
}

/* recv() returned bytes: echoed (and discarded once our FIN is sent); what the kernel
 * did not take is queued. The receive queue may still hold more. */
static void on_data(struct walk *w, struct sit s)
{
	int left, q;

	for (left = 0; left <= 1; left++) {
		struct sit n = s;

		n.unread = left;
		if (has(s.flags, CONN_SHUT_WR)) {
			settle(w, n);
			continue;
		}
		/* nothing queued: the kernel may take it all; else all of it is queued */
		for (q = s.q == Q_NONE ? Q_NONE : s.q; q < Q_LEVELS; q++) {
			n.q = q;
			settle(w, n);
		}
	}
}

/* Every event that can happen to a connection at rest in s. */
static void events(struct walk *w, struct sit s)
{
	bool reading = !has(s.flags, CONN_PAUSED) && !has(s.flags, CONN_EOF_READ);
	bool rdhup_armed =
	    has(s.flags, CONN_PAUSED) && w->cfg.early_close && !has(s.flags, CONN_PEER_FIN);
	struct sit n;
	int q;

	if (!s.fin && !s.unread) { /* the peer sends (only the kernel's queue changes) */
		n = s;
		n.unread = 1;
		settle(w, n);
	}
	if (!s.fin) { /* the peer's FIN arrives */
		n = s;
		n.fin = 1;
		settle(w, n);
	}
	if (reading && s.unread) /* conn_on_read (or the heartbeat's read): bytes */
		on_data(w, s);
	if (reading && !s.unread && s.fin) { /* conn_on_read: recv()==0 */
		n = s;
		n.flags |= CONN_EOF_READ;
		settle(w, n);
	}
	if (rdhup_armed && s.fin) { /* conn_on_closed: EPOLLRDHUP, conn_note_fin */
		n = s;
		n.flags |= CONN_PEER_FIN;
		settle(w, n);
	}
	for (q = Q_NONE; q <= s.q && s.q != Q_NONE; q++) { /* conn_on_write: a flush */
		n = s;
		n.q = q;
		settle(w, n);
	}
	if (!has(s.flags, CONN_DRAINING)) { /* conn_drain (SIGTERM, or its drain_spread turn) */
		n = s;
		n.flags |= CONN_DRAINING;
		settle(w, n);
	}
	if (!has(s.flags, CONN_DRAINING)) { /* conn_on_end: max_connection_age reached */
		n = s;
		n.flags |= CONN_DRAINING | CONN_AGED;
		settle(w, n);
	}
	if (has(s.flags, CONN_DRAINING) && !has(s.flags, CONN_FIN_DUE)) { /* half the grace */
		n = s;
		n.flags |= CONN_FIN_DUE;
		settle(w, n);
	}
}

static void search(struct walk *w)
{
	struct sit accepted = {0, Q_NONE, 0, 0};

	settle(w, accepted);
	while (w->head < w->tail)
		events(w, w->queue[w->head++]);
}

/* conn_decide on facts that break an invariant must abort (assert). In a child: the
 * abort must not take the test runner with it. */
static bool decide_aborts(const struct conn_facts *f)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		/* the assertion's message would fill the log: one line per case is enough */
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		conn_decide(f);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* A combination outside the search: conn_decide answers it by the rules, whatever
 * SIOCINQ says when asked, and at rest holds the invariants. */
static void check_by_the_rules(const struct conn_facts *given)
{
	int unread;

	for (unread = 0; unread <= 1; unread++) {
		struct conn_facts f = *given;
		enum conn_action a = conn_decide(&f);

		if (a == CONN_ACT_ASK_UNREAD) {
			f.unread = unread;
			a = conn_decide(&f);
		}
		if (a != expected_action(&f))
			fail_msg("flags=%#x out=%zu: conn_decide %s, the rules %s", f.flags, f.out,
				 conn_action_name(a), conn_action_name(expected_action(&f)));
		if (a == CONN_ACT_WAIT)
			assert_null(conn_facts_broken(&f, true));
	}
}

/* Why a combination that breaks no invariant is still never reached, or NULL. These
 * depend on the kernel's order or on the watermark, not on the connection's own flags, so
 * conn_decide does not assert on them: it answers by the rules (checked below). */
static const char *unreached_why(const struct cfg *cfg, unsigned fl, int q)
{
	if (has(fl, CONN_EOF_READ) && q == Q_HIGH)
		return "recv()==0 happens only while reading, below the watermark (a smaller "
		       "watermark, as a reload might set, would reach it)";
	if ((fl & (CONN_EOF_READ | CONN_DRAINING | CONN_SHUT_WR | CONN_EOF_IGNORED)) ==
		(CONN_EOF_READ | CONN_DRAINING) &&
	    q == Q_NONE && (!has(fl, CONN_PEER_FIN) || !cfg->close_on_eof))
		return "recv()==0 in a drain before our FIN with nothing queued: the drain sends "
		       "our FIN as soon as nothing is queued or unread, and the peer's FIN "
		       "comes after the bytes SIOCINQ counts";
	return NULL;
}

/* Every combination of flags and queue level never given to conn_decide breaks an
 * invariant, on which conn_decide asserts (checked in a child when fork_each), or is
 * named by unreached_why, and then answered by the rules; the ones unreached_why names
 * are indeed never reached. Returns how many are unreachable. */
static int check_unreached(const struct walk *w, bool fork_each)
{
	unsigned flags;
	int q, n = 0;

	for (flags = 0; flags < NFLAGS; flags++) {
		for (q = 0; q < Q_LEVELS; q++) {
			struct conn_facts f = facts_of(&w->cfg, flags, q);
			const char *why = unreached_why(&w->cfg, flags, q);

			if (w->decided[flags][q]) {
				if (why != NULL)
					fail_msg("flags=%#x q=%d reached, yet: %s", flags, q, why);
				continue;
			}
			n++;
			if (conn_facts_broken(&f, false) == NULL && why != NULL) {
				check_by_the_rules(&f);
				continue;
			}
			if (conn_facts_broken(&f, false) == NULL)
				fail_msg("close_on_eof=%d early_close=%d flags=%#x q=%d: never "
					 "reached, yet no invariant says so",
					 w->cfg.close_on_eof, w->cfg.early_close, flags, q);
			if (fork_each && !decide_aborts(&f))
				fail_msg("flags=%#x q=%d: conn_decide did not assert", flags, q);
		}
	}
	return n;
}

static void walk_config(bool close_on_eof, bool early_close, bool fork_each)
{
	static struct walk w; /* large: not on the stack */
	int a;

	memset(&w, 0, sizeof(w));
	w.cfg = (struct cfg){close_on_eof, early_close};
	search(&w);
	printf("close_on_eof=%d early_close=%d: %d situations at rest, %d of %d flag and "
	       "queue combinations unreachable; answers given:",
	       close_on_eof, early_close, w.rest, check_unreached(&w, fork_each),
	       NFLAGS * Q_LEVELS);
	for (a = 0; a <= CONN_ACT_CLOSE_MAX_AGE; a++)
		printf(" %s %d", conn_action_name((enum conn_action)a), w.actions[a]);
	printf("\n");
	/* Each mode reaches what it must: correct mode closes on eof and on the drain;
	 * close_on_eof=no never closes for eof and ignores the EOF instead. */
	assert_int_not_equal(w.actions[CONN_ACT_CLOSE_SHUTDOWN], 0);
	assert_int_not_equal(w.actions[CONN_ACT_CLOSE_MAX_AGE], 0);
	assert_int_not_equal(w.actions[CONN_ACT_SHUT_WR], 0);
	assert_int_not_equal(w.actions[CONN_ACT_PAUSE], 0);
	assert_int_not_equal(w.actions[CONN_ACT_RESUME], 0);
	assert_int_not_equal(w.actions[CONN_ACT_NOTE_FIN], 0);
	if (close_on_eof) {
		assert_int_not_equal(w.actions[CONN_ACT_CLOSE_EOF], 0);
		assert_int_equal(w.actions[CONN_ACT_IGNORE_EOF], 0);
	} else {
		assert_int_equal(w.actions[CONN_ACT_CLOSE_EOF], 0);
		assert_int_not_equal(w.actions[CONN_ACT_IGNORE_EOF], 0);
	}
}

static void test_correct(void **state)
{
	(void)state;
	walk_config(true, true, true);
}

static void test_leaky(void **state)
{
	(void)state;
	walk_config(false, false, true);
}

/* The mechanisms switched one at a time (each has its own key). */
static void test_mixed(void **state)
{
	(void)state;
	walk_config(true, false, false);
	walk_config(false, true, false);
}

/* A few rows by hand, the ones a reader would check first. */
static void test_rows(void **state)
{
	struct cfg correct = {true, true}, leaky = {false, false};
	struct conn_facts f;

	(void)state;
	f = facts_of(&correct, 0, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_WAIT); /* echoed, nothing queued */
	f = facts_of(&correct, CONN_EOF_READ, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_CLOSE_EOF); /* the usual EOF */
	f = facts_of(&correct, CONN_EOF_READ, Q_LOW);
	assert_int_equal(conn_decide(&f), CONN_ACT_NOTE_FIN); /* flush under fin_timeout */
	f = facts_of(&leaky, CONN_EOF_READ | CONN_PEER_FIN, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_IGNORE_EOF); /* CLOSE_WAIT for good */
	f = facts_of(&correct, 0, Q_HIGH);
	assert_int_equal(conn_decide(&f), CONN_ACT_PAUSE);
	f = facts_of(&correct, CONN_PAUSED, Q_MID);
	assert_int_equal(conn_decide(&f), CONN_ACT_WAIT); /* hysteresis */
	f = facts_of(&correct, CONN_PAUSED, Q_LOW);
	assert_int_equal(conn_decide(&f), CONN_ACT_RESUME);
	f = facts_of(&correct, CONN_DRAINING, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_ASK_UNREAD);
	f.unread = 1;
	assert_int_equal(conn_decide(&f), CONN_ACT_WAIT); /* echo what is unread first */
	f.unread = 0;
	assert_int_equal(conn_decide(&f), CONN_ACT_SHUT_WR);
	f = facts_of(&correct, CONN_DRAINING | CONN_SHUT_WR | CONN_EOF_READ, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_CLOSE_SHUTDOWN);
	/* the gentler endings: max-age ends like a drain, with its own reason */
	f = facts_of(&correct, CONN_DRAINING | CONN_AGED | CONN_SHUT_WR | CONN_EOF_READ, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_CLOSE_MAX_AGE);
	f = facts_of(&leaky,
		     CONN_DRAINING | CONN_AGED | CONN_EOF_READ | CONN_PEER_FIN | CONN_EOF_IGNORED,
		     Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_CLOSE_MAX_AGE);
	/* half the grace gone: our FIN once the echo is flushed, unread input or not */
	f = facts_of(&correct, CONN_DRAINING | CONN_FIN_DUE, Q_NONE);
	assert_int_equal(conn_decide(&f), CONN_ACT_SHUT_WR);
	f = facts_of(&correct, CONN_DRAINING | CONN_FIN_DUE, Q_LOW);
	assert_int_equal(conn_decide(&f), CONN_ACT_WAIT); /* the read bytes' echo first */
	f = facts_of(&correct, CONN_AGED, Q_NONE);
	assert_non_null(conn_facts_broken(&f, false)); /* max-age ends through a drain */
	/* the invariants the issue names */
	f = facts_of(&correct, CONN_SHUT_WR, Q_NONE);
	assert_non_null(conn_facts_broken(&f, false)); /* SHUT_WR sent implies draining */
	f = facts_of(&correct, CONN_PAUSED, Q_NONE);
	assert_null(conn_facts_broken(&f, false));    /* on its way to resume */
	assert_non_null(conn_facts_broken(&f, true)); /* at rest: paused implies queued */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_correct),
	    cmocka_unit_test(test_leaky),
	    cmocka_unit_test(test_mixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
