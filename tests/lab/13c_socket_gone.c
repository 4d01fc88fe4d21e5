/* Claim 13c: a crashed peer sends no FIN, so the sender only learns of it by retransmitting
 * until the timeout (the note's case A).
 *
 * Here the peer's socket disappears without a FIN or RST while its host stays up (a host
 * rebooted and back, or state lost): TCP_REPAIR is switched on before close(), which makes
 * tcp_close() call tcp_disconnect() silently. We check that nothing went on the wire,
 * that our side still believes it is ESTABLISHED, then send: the peer's kernel has no
 * socket for the segment and answers RST (tcp_v4_send_reset() from tcp_v4_rcv()'s
 * no_tcp_socket path). */
#include "lab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "13c"
#define CLAIM                                                                                      \
	"A crashed peer sends no FIN: a sender only finds out by retransmitting until the timeout"

struct outcome {
	int wire_at_close; /* FIN or RST sent by the vanishing socket */
	int state_after;   /* our state 500 ms later */
	ssize_t rc[3];
	int err[3];
	double rst_ms; /* from our send() to the RST */
	int retrans;   /* our data segments sent more than once */
};

static int vanish(struct lab_pair *p)
{
	if (lab_set_int(p->b, IPPROTO_TCP, TCP_REPAIR, 1, "setsockopt(TCP_REPAIR)") < 0)
		return -1;
	lab_close(&p->b);
	return 0;
}

static int run(struct lab_cap *cap, struct outcome *o)
{
	struct lab_pair p;
	const struct lab_pkt *rst;
	int64_t t0;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (vanish(&p) < 0)
		goto out;
	lab_sleep_ms(500);
	if (lab_cap_drain(cap) < 0 || (o->state_after = lab_tcp_state(p.a)) < 0)
		goto out;
	o->wire_at_close = lab_cap_count(cap, p.pb, p.pa, LAB_FIN | LAB_RST);
	t0 = lab_now_us();
	for (int i = 0; i < 3; i++) {
		o->rc[i] = send(p.a, "hello", 5, MSG_NOSIGNAL);
		o->err[i] = errno;
		if (i == 0 && lab_cap_wait(cap, p.pb, p.pa, LAB_RST, 1000) < 0)
			goto out;
	}
	rst = lab_cap_first(cap, p.pb, p.pa, LAB_RST);
	o->rst_ms = rst ? (rst->t_us - t0) / 1e3 : -1;
	o->retrans = lab_cap_count(cap, p.pa, p.pb, LAB_DATA) - 1;
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	static struct lab_cap cap;
	struct outcome o = {0};
	struct lab_str s = {0};
	char r[3][32];
	int silent, reset;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, &o) < 0)
		return lab_err("vanished socket");
	lab_add(&s,
		"peer socket gone (TCP_REPAIR close), host up: %d FIN/RST on the wire; our "
		"side still %s 0.5 s later. Then send()=%s; RST back after %.2f ms, %d "
		"retransmissions; next send()=%s, then %s.",
		o.wire_at_close, lab_state_name(o.state_after),
		lab_ret(r[0], 32, o.rc[0], o.err[0]), o.rst_ms, o.retrans,
		lab_ret(r[1], 32, o.rc[1], o.err[1]), lab_ret(r[2], 32, o.rc[2], o.err[2]));
	silent = o.wire_at_close == 0 && o.state_after == LAB_ESTABLISHED;
	reset = o.rst_ms >= 0 && o.retrans == 0 && o.err[1] == ECONNRESET;
	lab_row(ID, CLAIM,
		!silent ? LAB_DIFFERS
		: reset ? LAB_NUANCE
			: LAB_AGREES,
		silent && reset ? "no FIN indeed, but a host that is up answers the first segment "
				  "with RST: ECONNRESET at once, no retransmission; the long "
				  "timeout is for a host that does not answer (13a)"
				: NULL,
		s.s);
	lab_cap_close(&cap);
	return 0;
}
