/* Claim 10: after the peer's FIN, send() fails at once with EPIPE (the note's summary;
 * its table says the first send() succeeds, the peer answers RST, the next one fails).
 *
 * The peer close()s with nothing unread (a FIN); we read the EOF and send() three times,
 * waiting for the peer's answer after the first. A FIN only says the peer will not send:
 * Linux accepts data in CLOSE_WAIT, the orphaned peer answers it with RST (data for a
 * closed socket), and tcp_reset() in CLOSE_WAIT sets sk_err = EPIPE. The second send() is
 * made without MSG_NOSIGNAL, SIGPIPE blocked, to see whether SIGPIPE is raised. The same
 * is done against a peer that only shutdown(SHUT_WR). */
#include "lab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ID    "10"
#define CLAIM "send() after the peer's FIN fails at once with EPIPE"

struct outcome {
	ssize_t rc[3];
	int err[3];
	const char *answer; /* what the peer sent back after the first send() */
	int sigpipe;	    /* SIGPIPE raised by the second send() */
};

/* send() without MSG_NOSIGNAL, SIGPIPE blocked: reports whether it became pending. */
static int send_watch_sigpipe(int fd, ssize_t *rc, int *err, int *raised)
{
	struct timespec zero = {0, 0};
	sigset_t set, old;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (signal(SIGPIPE, SIG_DFL) == SIG_ERR || sigprocmask(SIG_BLOCK, &set, &old) < 0)
		return lab_sysfail("sigprocmask");
	*rc = send(fd, "x", 1, 0);
	*err = errno;
	*raised = sigtimedwait(&set, NULL, &zero) == SIGPIPE;
	if (sigprocmask(SIG_SETMASK, &old, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return lab_sysfail("sigprocmask (restore)");
	return 0;
}

static int run(struct lab_cap *cap, int peer_shutdown_only, struct outcome *o)
{
	char buf[100] = {0};
	struct lab_pair p;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (peer_shutdown_only ? shutdown(p.b, SHUT_WR) : close(p.b)) {
		lab_sysfail("peer shutdown/close");
		goto out;
	}
	if (!peer_shutdown_only)
		p.b = -1;
	if (lab_wait_eof(p.a, 2000) < 0)
		goto out;
	o->rc[0] = send(p.a, buf, sizeof(buf), MSG_NOSIGNAL);
	o->err[0] = errno;
	if (lab_cap_wait(cap, p.pb, p.pa, LAB_RST, 300) < 0)
		goto out;
	o->answer = lab_cap_count(cap, p.pb, p.pa, LAB_RST) ? "RST" : "no RST";
	if (send_watch_sigpipe(p.a, &o->rc[1], &o->err[1], &o->sigpipe) < 0)
		goto out;
	o->rc[2] = send(p.a, buf, sizeof(buf), MSG_NOSIGNAL);
	o->err[2] = errno;
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

static void describe(struct lab_str *s, const char *label, const struct outcome *o)
{
	char r[3][32];

	lab_add(s, "%s: 1st send()=%s, peer answered %s; 2nd send()=%s (SIGPIPE %s); 3rd=%s. ",
		label, lab_ret(r[0], 32, o->rc[0], o->err[0]), o->answer,
		lab_ret(r[1], 32, o->rc[1], o->err[1]), o->sigpipe ? "raised" : "not raised",
		lab_ret(r[2], 32, o->rc[2], o->err[2]));
}

int main(int argc, char **argv)
{
	struct outcome fin = {0}, half = {0};
	static struct lab_cap cap;
	struct lab_str s = {0};
	int first_epipe, table_right, half_ok;
	char why[256];

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, 0, &fin) < 0 || run(&cap, 1, &half) < 0)
		return lab_err("send after FIN");
	describe(&s, "peer close()d", &fin);
	describe(&s, "peer only shutdown(SHUT_WR)", &half);
	first_epipe = fin.rc[0] < 0 && fin.err[0] == EPIPE;
	table_right = fin.rc[0] > 0 && fin.answer[0] == 'R' && fin.rc[1] < 0 && fin.err[1] == EPIPE;
	half_ok = half.rc[0] > 0 && half.rc[1] > 0 && half.rc[2] > 0;
	snprintf(why, sizeof(why),
		 "the first send() succeeds and draws an RST; EPIPE%s comes with the next one, "
		 "as the note's table says%s",
		 fin.sigpipe ? " (and SIGPIPE)" : "",
		 half_ok ? "; a peer that only shut down its sending side takes the data" : "");
	lab_row(ID, CLAIM, first_epipe ? LAB_AGREES : LAB_DIFFERS, table_right ? why : NULL, s.s);
	lab_cap_close(&cap);
	return 0;
}
