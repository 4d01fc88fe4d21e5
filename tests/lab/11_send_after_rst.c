/* Claim 11: after the peer's RST, send() fails with ECONNRESET, and the next send() with
 * EPIPE.
 *
 * The peer resets (SO_LINGER {1,0} then close()) and we make three calls: send, send,
 * send; then recv first, then send; and the same three sends when the reset arrives in
 * CLOSE_WAIT (after the peer's FIN). Linux: tcp_reset() stores one pending error,
 * ECONNRESET in ESTABLISHED but EPIPE in CLOSE_WAIT; the first call of any kind takes it
 * (sock_error() clears sk_err); after that the socket is shut down for sending and every
 * send() gets EPIPE. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "11"
#define CLAIM "send() after the peer's RST fails with ECONNRESET, and the next send() with EPIPE"

enum variant { SEND3, RECV_FIRST, IN_CLOSE_WAIT, NVAR };
static const char *var_name[] = {"ESTABLISHED, send x3", "ESTABLISHED, recv then send x2",
				 "RST in CLOSE_WAIT, send x3"};

struct outcome {
	ssize_t rc[3];
	int err[3];
};

static int reset_from_peer(struct lab_pair *p, enum variant v)
{
	if (v == IN_CLOSE_WAIT) {
		if (shutdown(p->b, SHUT_WR) < 0)
			return lab_sysfail("shutdown(SHUT_WR)");
		if (lab_wait_eof(p->a, 2000) < 0)
			return -1;
	}
	if (lab_set_linger(p->b, 1, 0) < 0)
		return -1;
	lab_close(&p->b);
	/* tcp_reset() moves the socket to CLOSE: wait until the RST has been processed. */
	return lab_wait_state(p->a, LAB_CLOSE, 1000);
}

static int run(enum variant v, struct outcome *o)
{
	struct lab_pair p;
	char buf[10] = {0};

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (reset_from_peer(&p, v) < 0) {
		lab_pair_close(&p);
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		if (v == RECV_FIRST && i == 0)
			o->rc[i] = recv(p.a, buf, sizeof(buf), MSG_DONTWAIT);
		else
			o->rc[i] = send(p.a, buf, sizeof(buf), MSG_NOSIGNAL);
		o->err[i] = errno;
	}
	lab_pair_close(&p);
	return 0;
}

int main(int argc, char **argv)
{
	struct outcome o[NVAR] = {0};
	struct lab_str s = {0};
	char r[3][32];
	int as_note, others;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int v = 0; v < NVAR; v++) {
		if (run(v, &o[v]) < 0)
			return lab_err(var_name[v]);
		lab_add(&s, "%s: %s, %s, %s. ", var_name[v],
			lab_ret(r[0], 32, o[v].rc[0], o[v].err[0]),
			lab_ret(r[1], 32, o[v].rc[1], o[v].err[1]),
			lab_ret(r[2], 32, o[v].rc[2], o[v].err[2]));
	}
	as_note = o[SEND3].err[0] == ECONNRESET && o[SEND3].err[1] == EPIPE && o[SEND3].rc[0] < 0 &&
		  o[SEND3].rc[1] < 0;
	others = o[RECV_FIRST].err[1] == EPIPE && o[IN_CLOSE_WAIT].err[0] == EPIPE;
	lab_row(ID, CLAIM,
		!as_note ? LAB_DIFFERS
		: others ? LAB_NUANCE
			 : LAB_AGREES,
		as_note && others ? "ECONNRESET is reported once, to the first call of any kind "
				    "(a recv() takes it); in CLOSE_WAIT an RST gives EPIPE at once"
				  : NULL,
		s.s);
	return 0;
}
