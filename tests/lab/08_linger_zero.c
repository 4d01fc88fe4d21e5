/* Claim 8: SO_LINGER {l_onoff=1, l_linger=0}: close() returns at once, sends RST and the
 * data in the send buffer is discarded.
 *
 * The receiver does not read, so both its receive queue and the closer's send queue hold
 * data (FIONREAD / SIOCOUTQ) when the closer calls close(). Linux's tcp_close() then calls
 * tcp_disconnect(): RST, write queue purged. What the receiver already holds is in its own
 * receive queue, which an incoming RST does not purge (tcp_reset() -> tcp_done()). */
#include "lab.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "8"
#define CLAIM "SO_LINGER {1,0}: close() returns at once, sends RST and discards the send buffer"

struct outcome {
	size_t sent, got;
	int peer_queued, own_queued; /* bytes in the peer's receive / closer's send queue */
	int64_t close_us;
	int fins, rsts;
	int err;
};

static int queues(const struct lab_pair *p, struct outcome *o)
{
	if (ioctl(p->b, FIONREAD, &o->peer_queued) < 0)
		return lab_sysfail("ioctl(FIONREAD)");
	if (ioctl(p->a, SIOCOUTQ, &o->own_queued) < 0)
		return lab_sysfail("ioctl(SIOCOUTQ)");
	return 0;
}

struct flight {
	const struct lab_pair *p;
	size_t sent;
};

/* Nothing in flight: every byte the closer has put on the wire (what send() accepted less
 * what is still unsent, SIOCOUTQNSD) is in the peer's receive queue (FIONREAD; the peer
 * has read nothing). */
static int landed(void *arg)
{
	const struct flight *f = arg;
	int inq, unsent;

	if (ioctl(f->p->b, FIONREAD, &inq) < 0)
		return lab_sysfail("ioctl(FIONREAD)");
	if (ioctl(f->p->a, SIOCOUTQNSD, &unsent) < 0)
		return lab_sysfail("ioctl(SIOCOUTQNSD)");
	return (size_t)inq == f->sent - (size_t)unsent;
}

static int run(struct lab_cap *cap, struct outcome *o)
{
	struct lab_pair p;
	struct flight f;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 4096, 4096) < 0)
		return -1;
	if (lab_fill(p.a, &o->sent) < 0 || lab_set_linger(p.a, 1, 0) < 0)
		goto out;
	f = (struct flight){&p, o->sent};
	if (lab_wait_until(landed, &f, 2000,
			   "waiting for the bytes sent to land in the peer's receive queue") < 0 ||
	    queues(&p, o) < 0)
		goto out;
	if (lab_timed_close(&p.a, &o->close_us) < 0)
		goto out;
	if (lab_drain(p.b, 1000, &o->got, &o->err) < 0 || lab_cap_drain(cap) < 0)
		goto out;
	o->fins = lab_cap_count(cap, p.pa, p.pb, LAB_FIN);
	o->rsts = lab_cap_count(cap, p.pa, p.pb, LAB_RST);
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
	char why[160];
	int agrees;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, &o) < 0)
		return lab_err("linger 0 close");
	lab_add(&s,
		"send() accepted %zu bytes; at close() the peer's receive queue held %d and "
		"the closer's send queue %d. close() returned 0 in %lld us; on the wire %d RST, "
		"%d FIN. The peer then read %zu bytes and got %s; %zu bytes never arrived.",
		o.sent, o.peer_queued, o.own_queued, (long long)o.close_us, o.rsts, o.fins, o.got,
		o.err ? lab_errname(o.err) : "EOF", o.sent - o.got);
	agrees = o.rsts > 0 && o.fins == 0 && o.close_us < 50000 && o.got < o.sent;
	snprintf(why, sizeof(why),
		 "and the peer can still read the %zu bytes already in its receive queue "
		 "before %s",
		 o.got, o.err ? lab_errname(o.err) : "EOF");
	lab_row(ID, CLAIM, agrees ? LAB_AGREES : LAB_DIFFERS, agrees && o.got ? why : NULL, s.s);
	lab_cap_close(&cap);
	return 0;
}
