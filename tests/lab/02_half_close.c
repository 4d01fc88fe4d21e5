/* Claim 2: a FIN only means "this side will send no more": the side that sent it can
 * still receive.
 *
 * The FIN is sent two ways: shutdown(SHUT_WR), which keeps the socket open, and close(),
 * which orphans it. The peer then sends 1000 bytes. An orphaned socket has no reader, so
 * Linux answers data arriving for it with RST (tcp_rcv_state_process(): "data after
 * close" in FIN_WAIT_1/2 resets, counted as TCPAbortOnData). */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "2"
#define CLAIM                                                                                      \
	"A FIN is a half-close: the side that sent it can no longer send but can still receive"

struct outcome {
	int st_a, st_b;	   /* states once the FIN is acknowledged */
	ssize_t peer_send; /* the peer's send() of 1000 bytes */
	size_t got;	   /* what the FIN sender received of them */
	int got_err;	   /* how its stream ended */
	ssize_t own_send;  /* a send() by the FIN sender after its FIN */
	int own_err;
	const char *answer;	       /* what the FIN sender put on the wire after the data */
	ssize_t peer_recv, peer_send2; /* the peer's next recv() and send() */
	int peer_recv_err, peer_send2_err;
};

static void after_fin_send(struct lab_pair *p, struct outcome *o)
{
	char buf[1000] = {0};

	o->peer_send = send(p->b, buf, sizeof(buf), MSG_NOSIGNAL);
	if (p->a >= 0) {
		o->own_send = send(p->a, buf, 10, MSG_NOSIGNAL);
		o->own_err = errno;
	}
}

static int run(struct lab_cap *cap, int use_close, struct outcome *o)
{
	struct lab_pair p;
	char c;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (use_close ? close(p.a) : shutdown(p.a, SHUT_WR)) {
		lab_sysfail(use_close ? "close" : "shutdown(SHUT_WR)");
		goto out;
	}
	if (use_close)
		p.a = -1;
	if (lab_wait_eof(p.b, 2000) < 0)
		goto out;
	/* The ACK of a FIN may be delayed: wait until the FIN sender has it. */
	if (p.a >= 0 && lab_wait_state(p.a, LAB_FIN_WAIT2, 1000) < 0)
		goto out;
	o->st_a = p.a >= 0 ? lab_tcp_state(p.a) : -1;
	o->st_b = lab_tcp_state(p.b);
	after_fin_send(&p, o);
	if (p.a >= 0 && lab_drain(p.a, 300, &o->got, &o->got_err) < 0)
		goto out;
	if (lab_cap_wait(cap, p.pa, p.pb, LAB_RST, 300) < 0)
		goto out;
	o->answer = lab_cap_count(cap, p.pa, p.pb, LAB_RST) ? "RST" : "ACK only";
	o->peer_recv = recv(p.b, &c, 1, MSG_DONTWAIT);
	o->peer_recv_err = errno;
	o->peer_send2 = send(p.b, &c, 1, MSG_NOSIGNAL);
	o->peer_send2_err = errno;
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	struct outcome sh = {0}, cl = {0};
	static struct lab_cap cap;
	struct lab_str s = {0};
	char r1[32], r2[32], r3[32];
	enum lab_verdict v;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, 0, &sh) < 0 || run(&cap, 1, &cl) < 0)
		return lab_err("half close");
	lab_add(&s,
		"shutdown(SHUT_WR): states %s / peer %s; peer send(1000)=%s; FIN sender "
		"received %zu bytes (answered with %s); its own send() after the FIN = %s. ",
		lab_state_name(sh.st_a), lab_state_name(sh.st_b),
		lab_ret(r1, sizeof(r1), sh.peer_send, 0), sh.got, sh.answer,
		lab_ret(r2, sizeof(r2), sh.own_send, sh.own_err));
	lab_add(&s,
		"close(): peer %s; peer send(1000)=%s; the closed side answered with %s; "
		"then the peer's recv()=%s, send()=%s.",
		lab_state_name(cl.st_b), lab_ret(r1, sizeof(r1), cl.peer_send, 0), cl.answer,
		lab_ret(r2, sizeof(r2), cl.peer_recv, cl.peer_recv_err),
		lab_ret(r3, sizeof(r3), cl.peer_send2, cl.peer_send2_err));
	if (sh.got == 1000 && sh.own_send < 0 && cl.answer[0] != 'R')
		v = LAB_AGREES;
	else if (sh.got == 1000 && sh.own_send < 0)
		v = LAB_NUANCE;
	else
		v = LAB_DIFFERS;
	lab_row(ID, CLAIM, v,
		v == LAB_NUANCE ? "true after shutdown(SHUT_WR); after close() there is no "
				  "receiver and arriving data is answered with RST"
				: NULL,
		s.s);
	lab_cap_close(&cap);
	return 0;
}
