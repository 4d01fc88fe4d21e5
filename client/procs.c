#include "procs.h"
#include "fault.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct worker {
	pid_t pid;
	int rfd; /* read end of its pipe; EOF when it exits */
	struct event *ev;
	int gone;
};

struct parent {
	struct event_base *base;
	struct monitor *m;
	struct event *tick;
	struct worker *w;
	int n, alive, signals;
};

struct result *procs_alloc(int n)
{
	struct result *r = mmap(NULL, sizeof(*r) * (size_t)n, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (r == MAP_FAILED)
		return NULL;
	for (int i = 0; i < n; i++)
		result_init(&r[i]);
	return r;
}

void procs_free(struct result *results, int n)
{
	if (results != NULL)
		munmap(results, sizeof(*results) * (size_t)n);
}

static void worker_main(const struct driver_params *dp, int i, struct result *r, int wfd)
{
	struct driver_params mine = *dp;
	int rc;

	/* ^C from a terminal reaches the whole process group: the parent handles it. */
	signal(SIGINT, SIG_IGN);
	mine.tick = NULL; /* the parent's loop ticks */
	mine.tick_arg = NULL;
	rc = driver_run(&mine, i, r);
	close(wfd);
	_exit(rc);
}

/* Forks every worker. Each keeps only the write end of its own pipe; the parent keeps
 * the read ends (w[i].rfd). On failure every pipe is closed again (the workers already
 * forked are the caller's to kill and reap). */
static int spawn(const struct driver_params *dp, struct result *results, struct worker *w, int n)
{
	int(*fds)[2] = n > 0 ? calloc((unsigned)n, sizeof(*fds)) : NULL;
	int i, rc = -1;

	if (fds == NULL) {
		log_error("out of memory for the workers' pipes");
		return -1;
	}
	for (i = 0; i < n; i++)
		fds[i][0] = fds[i][1] = -1;
	for (i = 0; i < n; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			log_error("pipe2: %s", strerror(errno));
			goto out;
		}
	}
	fflush(NULL);
	for (i = 0; i < n; i++) {
		w[i].pid = fork();
		if (w[i].pid < 0) {
			log_error("fork of worker %d: %s", i, strerror(errno));
			goto out;
		}
		if (w[i].pid == 0) {
			for (int j = 0; j < n; j++) {
				close(fds[j][0]);
				if (j != i)
					close(fds[j][1]);
			}
			worker_main(dp, i, &results[i], fds[i][1]);
		}
	}
	for (i = 0; i < n; i++) {
		w[i].rfd = fds[i][0];
		fds[i][0] = -1;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		if (fds[i][0] >= 0)
			close(fds[i][0]);
		if (fds[i][1] >= 0)
			close(fds[i][1]);
	}
	free(fds);
	return rc;
}

static void worker_gone_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) > 0)
		return; /* workers write nothing; ignore */
	for (int i = 0; i < p->n; i++) {
		if (p->w[i].rfd == fd && !p->w[i].gone) {
			p->w[i].gone = 1;
			event_del(p->w[i].ev);
			p->alive--;
		}
	}
	if (p->alive == 0)
		event_base_loopbreak(p->base);
}

static void parent_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;

	(void)what;
	if (++p->signals > 1) {
		log_warn("second signal %d: killing the workers, exiting at once", (int)sig);
		for (int i = 0; i < p->n; i++)
			kill(p->w[i].pid, SIGKILL);
		fault_teardown();
		_exit(1);
	}
	log_info("signal %d: ending the run (workers finish their connections; again to exit "
		 "at once)",
		 (int)sig);
	for (int i = 0; i < p->n; i++) {
		if (!p->w[i].gone)
			kill(p->w[i].pid, SIGTERM);
	}
}

static void parent_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	tv = clock_us_to_tv(monitor_tick(p->m));
	event_base_update_cache_time(p->base); /* the delay is from now, not the loop's start */
	evtimer_add(p->tick, &tv);
}

/* The parent's loop: progress and timeline each second, until every worker is gone. */
static int parent_loop(struct parent *p, struct monitor *m)
{
	struct event *tick, *sint, *sterm;
	struct timeval first = clock_us_to_tv(monitor_next_tick_us(m));
	int rc = -1;

	p->base = event_base_new();
	if (p->base == NULL)
		return -1;
	p->m = m;
	p->tick = tick = evtimer_new(p->base, parent_tick_cb, p);
	sint = evsignal_new(p->base, SIGINT, parent_signal_cb, p);
	sterm = evsignal_new(p->base, SIGTERM, parent_signal_cb, p);
	if (tick == NULL || sint == NULL || sterm == NULL)
		goto out;
	evtimer_add(tick, &first);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	for (int i = 0; i < p->n; i++) {
		p->w[i].ev =
		    event_new(p->base, p->w[i].rfd, EV_READ | EV_PERSIST, worker_gone_cb, p);
		if (p->w[i].ev == NULL)
			goto out;
		event_add(p->w[i].ev, NULL);
	}
	fault_signals(0); /* handled by this loop now */
	event_base_dispatch(p->base);
	fault_signals(1);
	rc = 0;
out:
	for (int i = 0; i < p->n; i++) {
		if (p->w[i].ev != NULL)
			event_free(p->w[i].ev);
	}
	if (tick != NULL)
		event_free(tick);
	if (sint != NULL)
		event_free(sint);
	if (sterm != NULL)
		event_free(sterm);
	event_base_free(p->base);
	return rc;
}

/* Reaps every worker; 0 when all exited with status 0. */
static int reap(struct parent *p)
{
	int bad = 0;

	for (int i = 0; i < p->n; i++) {
		int st;
		pid_t got;
		if (p->w[i].pid <= 0)
			continue;
		while ((got = waitpid(p->w[i].pid, &st, 0)) < 0 && errno == EINTR)
			;
		if (got < 0) { /* st is unspecified then: the worker's end is unknown */
			log_error("waitpid of worker %d (pid %d): %s: its end is unknown", i,
				  (int)p->w[i].pid, strerror(errno));
			bad = 1;
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		bad = 1;
		if (WIFSIGNALED(st))
			log_error(
			    "worker %d (pid %d) was killed by signal %d: its counts are partial", i,
			    (int)p->w[i].pid, WTERMSIG(st));
		else
			log_error("worker %d (pid %d) exited with status %d", i, (int)p->w[i].pid,
				  WEXITSTATUS(st));
	}
	return bad;
}

int procs_run(const struct driver_params *dp, struct result *results, struct monitor *m)
{
	struct parent p = {.n = dp->plan->nworkers};
	int rc;

	p.w = p.n > 0 ? calloc((unsigned)p.n, sizeof(*p.w)) : NULL;
	if (p.w == NULL) {
		log_error("out of memory");
		return 1;
	}
	for (int i = 0; i < p.n; i++)
		p.w[i].rfd = -1;
	if (spawn(dp, results, p.w, p.n) < 0) {
		for (int i = 0; i < p.n; i++) {
			if (p.w[i].pid > 0)
				kill(p.w[i].pid, SIGKILL);
		}
		reap(&p);
		free(p.w);
		return 1;
	}
	p.alive = p.n;
	rc = parent_loop(&p, m) < 0 ? 1 : 0;
	if (rc != 0) {
		log_error("cannot watch the workers; waiting for them");
	}
	rc |= reap(&p);
	for (int i = 0; i < p.n; i++)
		close(p.w[i].rfd);
	free(p.w);
	return rc;
}
