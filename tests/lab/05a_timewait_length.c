/* Claim 5a: TIME_WAIT lasts 2MSL.
 *
 * Two connections are closed actively, one under tcp_fin_timeout=60 (the default) and one
 * under tcp_fin_timeout=5, a sysctl often believed to set TIME_WAIT. Linux arms the
 * timewait timer with the constant TCP_TIMEWAIT_LEN (tcp_time_wait(): "timeo =
 * TCP_TIMEWAIT_LEN" for state TIME_WAIT), so both should last the same. The timer is read
 * from sock_diag (idiag_expires) at once; without --quick the sockets are also watched
 * until they disappear. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID	"5a"
#define CLAIM	"TIME_WAIT lasts 2MSL"
#define WATCH_S 75

struct tw {
	int fin_timeout;
	struct lab_pair p;
	int64_t t_tw;	   /* when the active closer entered TIME_WAIT */
	uint32_t timer_ms; /* its timer right after */
	int64_t gone_us;   /* measured lifetime, 0 = not measured */
};

static int enter_time_wait(struct tw *t)
{
	struct lab_diag d;

	if (lab_sysctl_set("net/ipv4/tcp_fin_timeout", t->fin_timeout) < 0 ||
	    lab_pair_open(&t->p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (close(t->p.a) < 0)
		return lab_sysfail("close (active)");
	t->p.a = -1;
	if (lab_wait_eof(t->p.b, 2000) < 0)
		return -1;
	lab_close(&t->p.b); /* its FIN moves the active closer to TIME_WAIT at once */
	t->t_tw = lab_now_us();
	for (int i = 0; i < 200; i++) {
		if (lab_diag_find(t->p.pa, t->p.pb, &d) < 0)
			return -1;
		if (d.state == LAB_TIME_WAIT) {
			t->timer_ms = d.expires_ms;
			return 0;
		}
		lab_sleep_ms(5);
	}
	errno = ETIMEDOUT;
	return lab_sysfail("waiting for TIME_WAIT");
}

static int watch(struct tw *t, int n)
{
	int64_t end = lab_now_us() + WATCH_S * 1000000LL;
	struct lab_diag d;
	int left = n, f;

	while (left > 0 && lab_now_us() < end) {
		lab_sleep_ms(100);
		for (int i = 0; i < n; i++) {
			if (t[i].gone_us)
				continue;
			if ((f = lab_diag_find(t[i].p.pa, t[i].p.pb, &d)) < 0)
				return -1;
			if (!f) {
				t[i].gone_us = lab_now_us() - t[i].t_tw;
				left--;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tw t[2] = {{.fin_timeout = 60}, {.fin_timeout = 5}};
	struct lab_str s = {0};
	double life[2];
	int near60 = 1;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int i = 0; i < 2; i++)
		if (enter_time_wait(&t[i]) < 0)
			return lab_err("TIME_WAIT");
	if (!lab_quick() && watch(t, 2) < 0)
		return lab_err("watching TIME_WAIT");
	for (int i = 0; i < 2; i++) {
		life[i] = t[i].gone_us ? t[i].gone_us / 1e6 : t[i].timer_ms / 1e3;
		lab_add(&s, "tcp_fin_timeout=%d: TIME_WAIT timer read %.1f s on entry; ",
			t[i].fin_timeout, t[i].timer_ms / 1e3);
		if (t[i].gone_us)
			lab_add(&s, "socket gone after %.1f s. ", life[i]);
		else
			lab_add(&s, "not waited out (--quick). ");
		near60 &= life[i] > 55 && life[i] < 66;
	}
	lab_row(ID, CLAIM, near60 ? LAB_NUANCE : LAB_DIFFERS,
		near60 ? "Linux uses a fixed 60 s (TCP_TIMEWAIT_LEN), not 2 x RFC 793's 2-minute "
			 "MSL, and tcp_fin_timeout does not change it"
		       : NULL,
		s.s);
	for (int i = 0; i < 2; i++)
		lab_pair_close(&t[i].p);
	return 0;
}
