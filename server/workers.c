/* workers: N server processes on one port.
 *
 * Where the listeners live: the parent opens one SO_REUSEPORT listener per worker before
 * forking and keeps them all for its whole life; worker i inherits them, closes the others'
 * copies and accepts from its own. So no accept queue belongs to a worker process: a worker
 * that dies (kill -9 included) takes only the connections it had accepted, the
 * connections waiting in its queue stay there (the parent's copy keeps the socket open),
 * and its replacement, forked after the restart backoff, accepts them from the same
 * socket. A reload that adds workers adds sockets to the group (lossless on any kernel);
 * one that removes workers closes the leaving ones' sockets, which is lossless only with
 * net.ipv4.tcp_migrate_req=1 (tests/lab/15_listener_close.c): a warning at start says so
 * when it is off (workers_warn_migrate).
 *
 * Why not one socket all workers share (what the systemd socket activation passes,
 * and what the workers still do with an adopted socket): libevent 2.1 has no EPOLLEXCLUSIVE,
 * so each new connection wakes every idle worker watching it (level-triggered epoll); one
 * accept4() wins, the others return EAGAIN. Measured with strace -f -c under load-client
 * churn (scenario close, 2,000 new connections/s, 2 cores): 2 workers on one socket made
 * 19,231 accept4() calls for 9,917 connections, 9,314 of them EAGAIN (0.94 per connection;
 * a lone server: 0.21, the EAGAIN that ends each accept batch): about one wasted wake-up
 * per connection per other idle worker. Worse, the wake-ups are not fair: 9,000 idle
 * connections at 10,000/s on 3 workers went 4,632 / 2,668 / 1,700, so 45,000 would put
 * more than the per-process fd limit (20,000 here) into one worker
 * (test_capacity_workers.py failed so), where SO_REUSEPORT's hash spreads them evenly.
 *
 * Children run in their own process group: a terminal's Ctrl-C reaches only the parent,
 * which forwards one SIGTERM - one shutdown, not a "second signal".
 *
 * The supervisor keeps SIGCHLD, SIGTERM, SIGINT and SIGUSR1 blocked and takes them one at a
 * time with sigtimedwait(): a signal that arrives while it is busy (reaping, forking) waits
 * pending instead of being lost, and a worker's restart backoff is a timeout, not a sleep
 * that would delay a shutdown. */
#include "workers.h"
#include "clock.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A dead worker's slot is restarted after a delay that starts here and doubles with each
 * death of a worker in that slot that lived less than restart_backoff_reset, up to the
 * maximum: a worker that crashes at once is not forked in a tight loop, and one that ran
 * for a while is replaced at once. Not keys: crash_loop_deaths and crash_loop_window
 * decide when restarting stops making sense. */
#define RESTART_BACKOFF_MS     100
#define RESTART_BACKOFF_MAX_MS 5000
/* The largest crash_loop_deaths (config.c): the deaths remembered. */
#define CRASH_LOOP_MAX 100

/* The kernel moves the queue of a closed SO_REUSEPORT socket to another of its group only
 * with net.ipv4.tcp_migrate_req=1 (per network namespace; Linux 5.14+); the server never
 * changes it, and says once what it costs when it is off or missing. */
static void workers_warn_migrate(void)
{
	char buf[8] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "r");

	if (f != NULL) {
		if (fgets(buf, sizeof(buf), f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	if (buf[0] == '1')
		return;
	log_warn("net.ipv4.tcp_migrate_req is %s: a reload that lowers workers resets the "
		 "connections queued at a leaving worker's listener (the server never changes "
		 "the sysctl)",
		 f == NULL ? "missing" : "0");
}

/* The parent opens one SO_REUSEPORT listener per worker before forking and keeps them all
 * for its whole life (see the top of this file); a port in use is refused first
 * (listener_probe). "HOST:0" becomes "HOST:PORT" once the first is bound, for the others,
 * the log and the children. 0, or -1 after logging (*exit_code) with the opened ones in
 * lfds. */
static int workers_listen(struct server_config *cfg, int *lfds, int n, int *exit_code)
{
	char *colon;

	if (listener_probe(cfg, exit_code) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		lfds[i] = listener_open(cfg, 1, exit_code);
		if (lfds[i] < 0)
			return -1;
		colon = strrchr(cfg->listen, ':');
		snprintf(colon + 1, sizeof(cfg->listen) - (size_t)(colon + 1 - cfg->listen), "%d",
			 sock_local_port(lfds[i]));
	}
	workers_warn_migrate();
	return 0;
}

/* The parent's state: what it gives every worker, and what it knows about each one. */
struct supervisor {
	const struct server_config *cfg;
	struct server_params params; /* every worker's, but for its index */
	/* The parent's own fds (the ready pipe's read end): a child closes them first thing,
	 * so no worker holds what only the supervisor uses. */
	int parent_fds[2];
	int lfds[64]; /* worker i's listener; a child closes the others' copies */
	pid_t parent; /* the supervisor itself, for a child to find out it was orphaned */
	pid_t pids[64];
	int n, ready;
	int alive, stopping, rc;
	int64_t started[64];		/* monotonic ms at which worker i was forked */
	int64_t backoff[64];		/* ms before worker i's next restart */
	int64_t restart_at[64];		/* monotonic ms at which worker i is restarted; 0 = none */
	int64_t deaths[CRASH_LOOP_MAX]; /* when the last crash_loop_deaths workers died (a ring) */
	uint64_t ndeaths;
};

/* The child: one ordinary server process, worker `index` (0 serves /metrics). Writes one
 * byte to the ready pipe once listening. */
static void workers_child(const struct supervisor *sv, int index)
{
	struct server_params p = sv->params;
	struct server srv;
	int code, ready = sv->ready;
	sigset_t none;

	for (int i = 0; i < 2; i++)
		if (sv->parent_fds[i] >= 0)
			close(sv->parent_fds[i]);
	for (int i = 0; i < sv->n; i++)
		if (sv->lfds[i] >= 0 && sv->lfds[i] != sv->lfds[index])
			close(sv->lfds[i]);
	p.listen_fd = sv->lfds[index];
	p.worker = index;
	p.reuseport = 1; /* the port's other sockets are the other workers' */
	p.port_file = NULL; /* the parent writes it once every worker listens */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the supervisor's blocked set is not ours */
	setpgid(0, 0);
	/* The parent may have died between fork() and this prctl(): then no signal will ever
	 * come (the orphan's new parent is init), so it is looked for afterwards. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != sv->parent) {
		log_error("worker %d: the supervisor died before the worker started: exiting", index);
		_exit(1);
	}
	if (server_init(&srv, sv->cfg, &p, &code) < 0) {
		server_free(&srv);
		if (write(ready, "f", 1) != 1)
			log_warn("worker ready pipe: %s", strerror(errno));
		_exit(code);
	}
	if (write(ready, "r", 1) != 1)
		log_warn("worker ready pipe: %s", strerror(errno));
	close(ready);
	code = server_run(&srv);
	server_free(&srv);
	log_flush_suppressed();
	_exit(code);
}

static pid_t workers_spawn(const struct supervisor *sv, int index)
{
	pid_t pid = fork();

	if (pid == 0)
		workers_child(sv, index);
	if (pid < 0)
		log_error("fork: %s", strerror(errno));
	return pid;
}

static void workers_signal_all(const pid_t *pids, int n, int sig)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* The drain: the parent gives up its copies of the listeners, so each socket closes when
 * its worker has accepted what its drain takes and closed its own copy. */
static void workers_stop_listening(struct supervisor *sv)
{
	for (int i = 0; i < sv->n; i++) {
		if (sv->lfds[i] >= 0)
			close(sv->lfds[i]);
		sv->lfds[i] = -1;
	}
}

/* A signal reached the parent. SIGUSR1: each worker logs its own counters. The first
 * SIGTERM/SIGINT is forwarded (one drain); a second kills the workers. Returns 1 when the
 * supervisor must return at once. */
static int workers_on_signal(struct supervisor *sv, int sig)
{
	if (sig == SIGUSR1) {
		workers_signal_all(sv->pids, sv->n, SIGUSR1);
		/* the sum, with the connections of dead workers (lost) */
		metrics_log_total(sv->params.slots);
		return 0;
	}
	if (sig != SIGTERM && sig != SIGINT)
		return 0;
	if (sv->stopping) {
		log_warn("second signal: killing the workers");
		workers_signal_all(sv->pids, sv->n, SIGKILL);
		return 1;
	}
	sv->stopping = 1;
	log_info("graceful drain: forwarding SIGTERM to %d workers", sv->alive);
	workers_signal_all(sv->pids, sv->n, SIGTERM);
	workers_stop_listening(sv);
	return 0;
}

/* "exited with status 3", "killed by SIGKILL": what an operator reads, not a wait status. */
static const char *workers_status_str(int status, char *buf, size_t len)
{
	const char *name;

	if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		name = sigabbrev_np(WTERMSIG(status));
		if (name != NULL)
			snprintf(buf, len, "killed by SIG%s%s", name,
				 WCOREDUMP(status) ? " (core dumped)" : "");
		else
			snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	} else {
		snprintf(buf, len, "ended with wait status %#x", (unsigned)status);
	}
	return buf;
}

/* Remembers a death; 1 when it makes crash_loop_deaths within crash_loop_window. */
static int workers_crash_loop(struct supervisor *sv, int64_t now)
{
	uint64_t k = (uint64_t)sv->cfg->crash_loop_deaths;

	if (k == 0)
		return 0;
	if (k > CRASH_LOOP_MAX)
		k = CRASH_LOOP_MAX;
	sv->deaths[sv->ndeaths % k] = now;
	sv->ndeaths++;
	return sv->ndeaths >= k && now - sv->deaths[sv->ndeaths % k] <= sv->cfg->crash_loop_window;
}

/* Worker i died before the shutdown: a restart after its slot's backoff, or, in a crash
 * loop, the end: the other workers drain and the supervisor exits 1, so the service
 * manager (systemd's Restart=, StartLimitBurst=) decides what comes next. */
static void workers_died(struct supervisor *sv, int i, pid_t pid, int status)
{
	int64_t now = clock_mono_ms(), life = now - sv->started[i];
	char how[64];

	workers_status_str(status, how, sizeof(how));
	if (workers_crash_loop(sv, now)) {
		log_error("worker %d (pid %d) %s after %lldms: %lld worker deaths within %lldms "
			  "(crash_loop_deaths, crash_loop_window): stopping the workers, exit 1",
			  i, (int)pid, how, (long long)life, (long long)sv->cfg->crash_loop_deaths,
			  (long long)sv->cfg->crash_loop_window);
		sv->stopping = 1;
		sv->rc = 1;
		workers_signal_all(sv->pids, sv->n, SIGTERM);
		workers_stop_listening(sv);
		return;
	}
	if (life >= sv->cfg->restart_backoff_reset)
		sv->backoff[i] = RESTART_BACKOFF_MS;
	log_warn("worker %d (pid %d) %s after %lldms; restarting in %lldms", i, (int)pid, how,
		 (long long)life, (long long)sv->backoff[i]);
	sv->restart_at[i] = now + sv->backoff[i];
	sv->backoff[i] = sv->backoff[i] * 2 > RESTART_BACKOFF_MAX_MS ? RESTART_BACKOFF_MAX_MS
								     : sv->backoff[i] * 2;
}

/* Reaps every exited worker: after the shutdown it is counted out, before it a restart is
 * scheduled (workers_died). Its figures are retired first, before a replacement can use
 * its slot. */
static void workers_reap(struct supervisor *sv)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < sv->n; i++) {
			if (sv->pids[i] != pid)
				continue;
			sv->pids[i] = 0;
			metrics_worker_exited(sv->params.slots, i);
			if (!sv->stopping)
				workers_died(sv, i, pid, status);
			if (sv->stopping) {
				sv->alive--;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					sv->rc = 1;
			}
			break;
		}
	}
}

/* Starts the restarts that are due (or drops them once stopping); returns the ms until
 * the next one, or -1 when none is scheduled. */
static int64_t workers_restart_due(struct supervisor *sv)
{
	int64_t now = clock_mono_ms(), next = -1;

	for (int i = 0; i < sv->n; i++) {
		if (sv->restart_at[i] == 0)
			continue;
		if (sv->stopping) {
			sv->restart_at[i] = 0;
			sv->alive--;
		} else if (now >= sv->restart_at[i]) {
			sv->restart_at[i] = 0;
			sv->started[i] = now;
			sv->pids[i] = workers_spawn(sv, i);
			if (sv->pids[i] < 0)
				sv->alive--;
		} else if (next < 0 || sv->restart_at[i] - now < next) {
			next = sv->restart_at[i] - now;
		}
	}
	return next;
}

/* Waits for the workers, restarting one that dies before the shutdown. Returns 0 if all
 * exited 0 after a shutdown. */
static int workers_supervise(struct supervisor *sv, const sigset_t *set)
{
	int64_t now = clock_mono_ms();

	sv->alive = sv->n;
	for (int i = 0; i < sv->n; i++) {
		sv->started[i] = now;
		sv->backoff[i] = RESTART_BACKOFF_MS;
	}

	while (sv->alive > 0) {
		int64_t wait_ms;
		struct timespec ts;
		int sig;

		workers_reap(sv);
		wait_ms = workers_restart_due(sv);
		if (sv->alive <= 0)
			break;
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		sig = sigtimedwait(set, NULL, wait_ms >= 0 ? &ts : NULL);
		if (sig > 0 && workers_on_signal(sv, sig))
			return 1;
	}
	return sv->rc;
}

/* Waits for one ready byte per worker. -1 when a worker failed to start: it wrote 'f',
 * was never forked, or died before writing anything (the parent holds the pipe's write
 * end, so that death alone would never end a read(): it is looked for between polls). */
static int workers_wait_ready(const pid_t *pids, int n, int rfd)
{
	for (int i = 0; i < n; i++) {
		struct pollfd p = {.fd = rfd, .events = POLLIN};
		char c = 0;
		int k;

		if (pids[i] <= 0)
			return -1;
		while ((k = poll(&p, 1, 100)) <= 0) {
			if (k < 0 && errno != EINTR)
				return -1;
			if (waitpid(-1, NULL, WNOHANG) > 0)
				return -1;
		}
		if (read(rfd, &c, 1) != 1 || c != 'r')
			return -1;
	}
	return 0;
}

int workers_run(const struct server_config *base_cfg, const struct server_params *params)
{
	struct server_config cfg = *base_cfg;
	struct supervisor sv = {.cfg = &cfg, .params = *params, .n = (int)cfg.workers,
				.parent = getpid()};
	int pipefd[2] = {-1, -1}, rc = 1;
	sigset_t set;

	for (int i = 0; i < 64; i++)
		sv.lfds[i] = -1;
	if (workers_listen(&cfg, sv.lfds, sv.n, &rc) < 0)
		goto out;
	if (metrics_prefork(&cfg, sv.n, &sv.params, &rc) < 0)
		goto out;
	if (pipe(pipefd) < 0) {
		log_error("pipe: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	sv.parent_fds[0] = -1;
	sv.parent_fds[1] = pipefd[0];
	sv.ready = pipefd[1];
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < sv.n; i++)
		sv.pids[i] = workers_spawn(&sv, i);
	if (workers_wait_ready(sv.pids, sv.n, pipefd[0]) < 0) {
		log_error("a worker failed to start");
		workers_signal_all(sv.pids, sv.n, SIGKILL);
		while (wait(NULL) > 0)
			;
		rc = 2;
		goto out;
	}
	if (params->port_file != NULL &&
	    server_write_port_file(params->port_file, sock_local_port(sv.lfds[0])) < 0)
		log_error("port file %s: %s", params->port_file, strerror(errno));
	log_info("%d workers listening on %s", sv.n, cfg.listen);
	rc = workers_supervise(&sv, &set);
	metrics_log_total(sv.params.slots);
out:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	workers_stop_listening(&sv);
	return rc;
}
