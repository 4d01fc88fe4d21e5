/* Claim 1: close() with data still in the send buffer returns at once and TCP still
 * delivers that data.
 *
 * Observed twice on loopback, the receiver not reading so the data waits in the closer's
 * send buffer: (a) the closer has read everything sent to it; (b) 100 bytes sent to the
 * closer are still unread. Linux's tcp_close() sends RST instead of FIN and drops the send
 * queue when unread data is "tossed" (RFC 2525 2.17), so (b) is where the claim may fail. */
#include "lab.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "1"
#define CLAIM                                                                                      \
	"close() with data still in the send buffer returns at once and TCP still delivers the "   \
	"data"

struct outcome {
	size_t sent, got;
	int err;	  /* how the reader's stream ended: 0 = EOF */
	int64_t close_us; /* time spent inside close() */
	const char *wire; /* what the closer sent: FIN or RST */
};

static int give_unread(struct lab_pair *p)
{
	struct pollfd pf = {.fd = p->a, .events = POLLIN};
	char buf[100] = {0};

	if (send(p->b, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return lab_sysfail("send (unread bytes for the closer)");
	if (poll(&pf, 1, 2000) != 1)
		return lab_sysfail("poll (unread bytes to arrive)");
	return 0;
}

static int run(struct lab_cap *cap, int unread, struct outcome *o)
{
	struct lab_pair p;
	int rc = -1;

	/* Small buffers so the queue fills with a few kilobytes. */
	if (lab_pair_open(&p, "127.0.0.1", 4096, 4096) < 0)
		return -1;
	if (unread && give_unread(&p) < 0)
		goto out;
	if (lab_fill(p.a, &o->sent) < 0)
		goto out;
	if (lab_timed_close(&p.a, &o->close_us) < 0)
		goto out;
	if (lab_drain(p.b, 2000, &o->got, &o->err) < 0 || lab_cap_drain(cap) < 0)
		goto out;
	o->wire = lab_cap_teardown(cap, p.pa, p.pb);
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

static void describe(struct lab_str *s, const char *label, const struct outcome *o)
{
	lab_add(s,
		"%s: close() returned 0 in %lld us; closer sent %s; reader got %zu of %zu "
		"bytes send() had accepted, then %s. ",
		label, (long long)o->close_us, o->wire, o->got, o->sent,
		o->err == 0 ? "EOF" : lab_errname(o->err));
}

static int delivered(const struct outcome *o)
{
	return o->err == 0 && o->got == o->sent && o->close_us < 50000;
}

int main(int argc, char **argv)
{
	struct outcome clean = {0}, unread = {0};
	static struct lab_cap cap;
	struct lab_str s = {0};
	enum lab_verdict v;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, 0, &clean) < 0 || run(&cap, 1, &unread) < 0)
		return lab_err("close with queued data");
	describe(&s, "receive queue empty", &clean);
	describe(&s, "100 bytes unread by the closer", &unread);
	if (delivered(&clean) && delivered(&unread))
		v = LAB_AGREES;
	else if (delivered(&clean))
		v = LAB_NUANCE;
	else
		v = LAB_DIFFERS;
	lab_row(ID, CLAIM, v,
		v == LAB_NUANCE ? "only if the closer has read all it received; unread data "
				  "turns close() into an RST that discards the send queue"
				: NULL,
		s.s);
	lab_cap_close(&cap);
	return 0;
}
