/* Claim 9: SO_LINGER {1, N>0}: close() waits until the data is sent and acknowledged or N
 * microseconds pass; when the time runs out close() fails with EWOULDBLOCK (EAGAIN).
 *
 * The peer does not read, so the data cannot be acknowledged: close() is timed with
 * l_linger=1 on a blocking socket and l_linger=2 on a nonblocking one; the unit is the
 * one (us, ms, s) nearest to the measured time. Then the peer reads, to see whether the
 * data still arrives. Last, l_linger=5 with a peer that reads: close() should return once
 * the FIN is acknowledged. Linux: inet_release() passes sk_lingertime (l_linger * HZ)
 * to tcp_close(), which queues the FIN first and then waits in sk_stream_wait_close();
 * the return value of close() does not depend on that wait, and O_NONBLOCK is not
 * consulted. */
#include "lab.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "9"
#define CLAIM "SO_LINGER {1,N}: close() blocks at most N microseconds, then fails with EWOULDBLOCK"

struct outcome {
	int linger, nonblock, reader; /* setup */
	size_t sent, got;
	int rc, err, end_err;
	double secs;
};

struct reader {
	int fd;
	size_t got;
	int err, rc;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;

	r->rc = lab_drain(r->fd, 3000, &r->got, &r->err);
	return NULL;
}

static int timed_close(struct lab_pair *p, struct outcome *o)
{
	int64_t t0 = lab_now_us();

	o->rc = close(p->a);
	o->err = errno;
	o->secs = (lab_now_us() - t0) / 1e6;
	p->a = -1;
	return 0;
}

static int run(struct outcome *o)
{
	struct reader r = {.fd = -1};
	struct lab_pair p;
	pthread_t th;
	int rc = -1, started = 0;

	if (lab_pair_open(&p, "127.0.0.1", 4096, 4096) < 0)
		return -1;
	r.fd = p.b;
	if (lab_fill(p.a, &o->sent) < 0 || lab_set_linger(p.a, 1, o->linger) < 0 ||
	    (o->nonblock && lab_set_nonblock(p.a, 1) < 0))
		goto out;
	if (o->reader && (errno = pthread_create(&th, NULL, read_all, &r)) != 0) {
		lab_sysfail("pthread_create");
		goto out;
	}
	started = o->reader;
	timed_close(&p, o);
	if (!o->reader)
		read_all(&r);
	rc = 0;
out:
	if (started && (errno = pthread_join(th, NULL)) != 0)
		rc = lab_sysfail("pthread_join");
	if (r.rc < 0)
		rc = -1;
	o->got = r.got;
	o->end_err = r.err;
	lab_pair_close(&p);
	return rc;
}

/* us, ms or s: the unit that makes l_linger units closest to what was measured. */
static const char *unit_of(double secs, int linger)
{
	static const char *name[] = {"microseconds", "milliseconds", "seconds"};
	static const double unit[] = {1e-6, 1e-3, 1};
	double best = INFINITY;
	int k = 0;

	for (int i = 0; i < 3; i++) {
		double d = fabs(log(secs / (linger * unit[i])));

		if (d < best)
			best = d, k = i;
	}
	return name[k];
}

static void describe(struct lab_str *s, const struct outcome *o)
{
	char r[32];

	lab_add(s, "l_linger=%d, %s, peer %s: close() = %s after %.3f s", o->linger,
		o->nonblock ? "nonblocking" : "blocking", o->reader ? "reading" : "not reading",
		lab_ret(r, sizeof(r), o->rc, o->err), o->secs);
	if (!o->reader)
		lab_add(s, " (so the unit is %s); the peer then read", unit_of(o->secs, o->linger));
	else
		lab_add(s, "; the peer read");
	lab_add(s, " %zu of %zu bytes and %s. ", o->got, o->sent,
		o->end_err ? lab_errname(o->end_err) : "EOF");
}

int main(int argc, char **argv)
{
	struct outcome o[3] = {
	    {.linger = 1}, {.linger = 2, .nonblock = 1}, {.linger = 5, .reader = 1}};
	struct lab_str s = {0};
	int note_unit, note_err;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int i = 0; i < 3; i++) {
		if (run(&o[i]) < 0)
			return lab_err("linger close");
		describe(&s, &o[i]);
	}
	note_unit = o[0].secs < 0.01 && o[1].secs < 0.01;
	note_err = o[0].rc < 0 && (o[0].err == EWOULDBLOCK) && o[1].rc < 0;
	lab_row(ID, CLAIM, note_unit && note_err ? LAB_AGREES : LAB_DIFFERS,
		note_unit || note_err ? NULL
		: o[0].got == o[0].sent
		    ? "the unit is seconds, close() returns 0 when the time runs out (blocking "
		      "or not), and the data is still delivered afterwards"
		    : "the unit is seconds and close() returns 0 when the time runs out",
		s.s);
	return 0;
}
