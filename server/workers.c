/* workers: N server processes on one port.
 *
 * The parent binds (but never listens on) a SO_REUSEPORT socket to fix the port number
 * when the config says port 0; each child then opens its own listener on that port after
 * fork, so a dead worker's queue dies with it instead of receiving 1/N of new
 * connections. Children run in their own process group: a terminal's Ctrl-C reaches only
 * the parent, which forwards one SIGTERM - one shutdown, not a "second signal". A worker
 * whose parent dies, even by SIGKILL, drains too: it asks the kernel for a signal of its
 * own then (WORKERS_PARENT_DEATH_SIGNAL), which may come more than once.
 *
 * The supervisor keeps SIGCHLD, SIGTERM, SIGINT and SIGUSR1 blocked and takes them one at a
 * time with sigtimedwait(): a signal that arrives while it is busy (reaping, forking) waits
 * pending instead of being lost, and a worker's restart backoff is a timeout, not a sleep
 * that would delay a shutdown. */
#include "workers.h"
#include "clock.h"
#include "log.h"
#include "portfile.h"
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
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* What a worker asks for with PR_SET_PDEATHSIG. Not SIGTERM: the kernel sends it once per
 * reparenting, so twice when the supervisor's forking thread dies before its log writer
 * thread (server.c, server_on_parent_death), and a second SIGTERM ends a drain at once. A
 * realtime signal, which nothing else sends a worker by convention, and which queues: each
 * copy is delivered, and each after the first is ignored. */
#define WORKERS_PARENT_DEATH_SIGNAL SIGRTMIN

/* A dead worker's slot is restarted after a delay that starts here and doubles with each
 * death of a worker in that slot that lived less than restart_backoff_reset, up to the
 * maximum: a worker that crashes at once is not forked in a tight loop, and one that ran
 * for a while is replaced at once. Not keys: crash_loop_deaths and crash_loop_window
 * decide when restarting stops making sense. */
#define RESTART_BACKOFF_MS     100
#define RESTART_BACKOFF_MAX_MS 5000
/* The largest crash_loop_deaths (config.c): the deaths remembered. */
#define CRASH_LOOP_MAX 100

/* SO_REUSEPORT lets any process of the same user join a port's group, so a second
 * server with workers > 1 would start and the kernel would split new connections between
 * the two. A plain bind (SO_REUSEADDR only, which still ignores TIME_WAIT) fails with
 * EADDRINUSE while anything listens there; the probe is closed again. 0, or -1 with errno. */
static int workers_probe_port(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	int port = sa->sa_family == AF_INET6 ? in6->sin6_port : in->sin_port;
	int fd;

	if (port == 0) /* any free port: nothing to collide with */
		return 0;
	fd = sock_bind_stream(sa, len, 0);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Fixes the port: the parent keeps a bound, non-listening socket in the reuseport group. */
static int workers_reserve_port(struct server_config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256], *colon;
	int fd;

	if (sock_parse_hostport(cfg->listen, &ss, &len, err, sizeof(err)) < 0) {
		log_error("listen %s: %s", cfg->listen, err);
		return -1;
	}
	if (workers_probe_port((struct sockaddr *)&ss, len) < 0) {
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		return -1;
	}
	fd = sock_bind_stream((struct sockaddr *)&ss, len, 1);
	if (fd < 0) {
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		return -1;
	}
	/* Rewrite the port in place: "HOST:0" becomes "HOST:PORT" for the children. */
	colon = strrchr(cfg->listen, ':');
	snprintf(colon + 1, sizeof(cfg->listen) - (size_t)(colon + 1 - cfg->listen), "%d",
		 sock_local_port(fd));
	return fd;
}

/* The parent's state: what it gives every worker, and what it knows about each one. */
struct supervisor {
	const struct server_config *cfg;
	struct server_params params; /* every worker's, but for its index */
	/* The parent's own fds (the port-reserving socket, the ready pipe's read end): a child
	 * closes them first thing, so no worker holds what only the supervisor uses. */
	int parent_fds[2];
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

/* A worker leaves with _exit(): exit() would run the atexit handlers and flush the stdio
 * buffers it inherited from the supervisor. LeakSanitizer checks in an atexit handler,
 * which _exit() skips, so on a sanitizer build the worker (where every connection lives)
 * runs that check here first; a leak makes it exit with LeakSanitizer's status. */
static void workers_child_exit(int code)
{
#ifdef __SANITIZE_ADDRESS__
	__lsan_do_leak_check();
#endif
	_exit(code);
}

/* After the event loop: a copy of the parent-death signal that comes late (the supervisor's
 * last thread died only now) stays pending until _exit(). server_free() gives the signal
 * its default action back, which would end the worker before its last lines are written. */
static void workers_hold_parent_death(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		log_warn("sigprocmask: %s", strerror(errno));
}

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
	p.worker = index;
	p.reuseport = 1;
	p.port_file = NULL; /* the parent writes it once every worker listens */
	p.parent_death_signal = WORKERS_PARENT_DEATH_SIGNAL;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the supervisor's blocked set is not ours */
	setpgid(0, 0);
	/* The parent may have died between fork() and this prctl(): then no signal will ever
	 * come (the orphan's new parent is init), so it is looked for afterwards. */
	if (prctl(PR_SET_PDEATHSIG, p.parent_death_signal) < 0 || getppid() != sv->parent) {
		log_error("worker %d: the supervisor died before the worker started: exiting", index);
		_exit(1);
	}
	log_start((size_t)sv->cfg->log_buffer); /* fork left this process without a log writer */
	if (server_init(&srv, sv->cfg, &p, &code) < 0) {
		server_free(&srv);
		if (write(ready, "f", 1) != 1)
			log_warn("worker ready pipe: %s", strerror(errno));
		log_finish(LOG_FINISH_MS);
		workers_child_exit(code);
	}
	log_flush(LOG_FINISH_MS); /* its startup lines before the supervisor's port file */
	if (write(ready, "r", 1) != 1)
		log_warn("worker ready pipe: %s", strerror(errno));
	close(ready);
	code = server_run(&srv);
	workers_hold_parent_death(p.parent_death_signal);
	server_free(&srv);
	log_flush_suppressed();
	log_finish(LOG_FINISH_MS);
	workers_child_exit(code);
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
	int pipefd[2] = {-1, -1}, rc = 1, reserve;
	sigset_t set;

	reserve = workers_reserve_port(&cfg);
	if (reserve < 0)
		return 2;
	if (metrics_prefork(&cfg, sv.n, &sv.params, &rc) < 0)
		goto out;
	if (pipe(pipefd) < 0) {
		log_error("pipe: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	sv.parent_fds[0] = reserve;
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
	log_info("%d workers listening on %s", sv.n, cfg.listen);
	if (params->port_file != NULL &&
	    portfile_write(params->port_file, sock_local_port(reserve)) < 0)
		log_error("port file %s: %s", params->port_file, strerror(errno));
	rc = workers_supervise(&sv, &set);
	metrics_log_total(sv.params.slots);
out:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	close(reserve);
	return rc;
}
