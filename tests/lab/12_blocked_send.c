/* Claim 12: a send() blocked in the kernel (send buffer full, peer not reading) when the
 * peer closes, resets, or only shuts down its sending side.
 *
 * A thread blocks in send() of 256 KiB (SO_SNDTIMEO 3 s bounds it); the peer then acts;
 * we record what the peer put on the wire, what the blocked send() returned and when, and
 * the next two send() calls. Linux: the blocked sender sleeps in sk_stream_wait_memory()
 * and is woken by sk_err or SEND_SHUTDOWN only; a call that already copied bytes returns
 * that count and leaves the error for the next call. A peer FIN sets RCV_SHUTDOWN on our
 * side, which sending ignores. */
#include "lab.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BIG (256 * 1024)

enum action { PEER_CLOSE, PEER_RESET, PEER_SHUT_WR, NACT };
static const char *act_id[] = {"12a", "12b", "12c"};
static const char *act_claim[] = {
    "A send() blocked when the peer close()s returns the bytes copied after the peer's FIN; the "
    "peer then sends RST and the next send() gets EPIPE",
    "A send() blocked when the peer resets (SO_LINGER 0) returns the bytes copied; the next send() "
    "gets ECONNRESET, the one after EPIPE",
    "(from claim 2) A peer's shutdown(SHUT_WR) does not disturb a blocked send(): the peer can "
    "still receive"};

struct sender {
	int fd;
	ssize_t rc;
	int err;
	int64_t t_done; /* 0 while blocked */
	pthread_mutex_t mu;
};

struct outcome {
	const char *wire;
	ssize_t rc, next[2];
	int err, next_err[2];
	double after_s; /* from the peer's action to the blocked send()'s return */
	int blocked_1s; /* for shutdown: still blocked one second later */
	size_t peer_got;
	int peer_unread; /* bytes the peer had not read when it acted */
};

static void *blocked_send(void *arg)
{
	static char buf[BIG];
	struct sender *s = arg;
	ssize_t rc = send(s->fd, buf, sizeof(buf), MSG_NOSIGNAL);
	int err = errno;

	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	s->err = err;
	s->t_done = lab_now_us();
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int64_t done_at(struct sender *s)
{
	int64_t t;

	pthread_mutex_lock(&s->mu);
	t = s->t_done;
	pthread_mutex_unlock(&s->mu);
	return t;
}

static int peer_acts(struct lab_pair *p, enum action a)
{
	if (a == PEER_RESET && lab_set_linger(p->b, 1, 0) < 0)
		return -1;
	if (a == PEER_SHUT_WR)
		return shutdown(p->b, SHUT_WR) < 0 ? lab_sysfail("shutdown(SHUT_WR)") : 0;
	lab_close(&p->b);
	return 0;
}

/* For shutdown: is the sender still blocked a second later, and does reading free it? */
static int after_shutdown(struct lab_pair *p, struct sender *s, struct outcome *o)
{
	int err;

	lab_sleep_ms(1000);
	o->blocked_1s = done_at(s) == 0;
	return lab_drain(p->b, 500, &o->peer_got, &err);
}

static int next_sends(int fd, struct outcome *o)
{
	for (int i = 0; i < 2; i++) {
		o->next[i] = send(fd, "x", 1, MSG_NOSIGNAL);
		o->next_err[i] = errno;
	}
	return 0;
}

static int act_and_watch(struct lab_cap *cap, struct lab_pair *p, struct sender *s, enum action a,
			 struct outcome *o)
{
	int64_t t_act;

	lab_sleep_ms(200); /* the sender fills the buffers and sleeps */
	if (done_at(s) != 0) {
		errno = EAGAIN;
		return lab_sysfail("send() did not block");
	}
	if (ioctl(p->b, FIONREAD, &o->peer_unread) < 0)
		return lab_sysfail("ioctl(FIONREAD)");
	t_act = lab_now_us();
	if (peer_acts(p, a) < 0)
		return -1;
	if (a == PEER_SHUT_WR && after_shutdown(p, s, o) < 0)
		return -1;
	while (done_at(s) == 0 && lab_now_us() - t_act < 4000000)
		lab_sleep_ms(1);
	o->after_s = (done_at(s) - t_act) / 1e6;
	if (lab_cap_wait(cap, p->pb, p->pa, LAB_FIN | LAB_RST, 200) < 0)
		return -1;
	o->wire = lab_cap_teardown(cap, p->pb, p->pa);
	return 0;
}

static int run(struct lab_cap *cap, enum action a, struct outcome *o)
{
	struct timeval tv = {3, 0};
	struct sender s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct lab_pair p;
	pthread_t th;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 4096, 4096) < 0)
		return -1;
	s.fd = p.a;
	if (setsockopt(p.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		lab_sysfail("setsockopt(SO_SNDTIMEO)");
		goto out;
	}
	if ((errno = pthread_create(&th, NULL, blocked_send, &s)) != 0) {
		lab_sysfail("pthread_create");
		goto out;
	}
	rc = act_and_watch(cap, &p, &s, a, o);
	if ((errno = pthread_join(th, NULL)) != 0)
		rc = lab_sysfail("pthread_join");
	o->rc = s.rc;
	o->err = s.err;
	if (rc == 0)
		next_sends(p.a, o);
out:
	lab_pair_close(&p);
	return rc;
}

static enum lab_verdict verdict(enum action a, const struct outcome *o, const char **why)
{
	int partial = o->rc > 0 && o->rc < BIG;

	*why = NULL;
	if (a == PEER_CLOSE) {
		if (o->wire[0] == 'F' && partial && o->next_err[0] == EPIPE)
			return LAB_AGREES;
		if (o->wire[0] == 'R' && o->peer_unread > 0 && partial &&
		    o->next_err[0] == ECONNRESET)
			*why =
			    "the peer had unread data, so its close() sent RST, not FIN: the "
			    "blocked send() returns the bytes copied, then ECONNRESET, then EPIPE";
		return LAB_DIFFERS;
	}
	if (a == PEER_RESET)
		return partial && o->next_err[0] == ECONNRESET && o->next_err[1] == EPIPE
			   ? LAB_AGREES
			   : LAB_DIFFERS;
	if (o->blocked_1s && o->rc == BIG)
		*why = "the FIN does not wake the sender; it completes as the peer reads";
	return o->blocked_1s && o->rc == BIG ? LAB_AGREES : LAB_DIFFERS;
}

static void describe(struct lab_str *s, enum action a, const struct outcome *o)
{
	char r[3][32];

	lab_add(s, "peer had %d unread bytes and sent %s; ", o->peer_unread, o->wire);
	if (a == PEER_SHUT_WR)
		lab_add(s, "send() %s 1 s later; the peer read %zu bytes; ",
			o->blocked_1s ? "still blocked" : "had returned", o->peer_got);
	lab_add(s,
		"the blocked send(%d) returned %s %.3f s after the peer acted; next send()=%s, "
		"then %s.",
		BIG, lab_ret(r[0], 32, o->rc, o->err), o->after_s,
		lab_ret(r[1], 32, o->next[0], o->next_err[0]),
		lab_ret(r[2], 32, o->next[1], o->next_err[1]));
}

int main(int argc, char **argv)
{
	static struct lab_cap cap;
	const char *why;

	lab_init(argc, argv, act_id[0], act_claim[0]);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	for (int a = 0; a < NACT; a++) {
		struct outcome o = {0};
		struct lab_str s = {0};
		enum lab_verdict v;

		if (run(&cap, a, &o) < 0)
			return lab_err(act_id[a]);
		describe(&s, a, &o);
		v = verdict(a, &o, &why);
		lab_row(act_id[a], act_claim[a], v, why, s.s);
	}
	lab_cap_close(&cap);
	return 0;
}
