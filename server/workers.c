/* workers: N server processes on one port.
 *
 * The parent binds (but never listens on) a SO_REUSEPORT socket to fix the port number
 * when the config says port 0; each child then opens its own listener on that port after
 * fork, so a dead worker's queue dies with it instead of receiving 1/N of new
 * connections. Children run in their own process group: a terminal's Ctrl-C reaches only
 * the parent, which forwards one SIGTERM - one shutdown, not a "second signal".
 *
 * The supervisor keeps SIGCHLD, SIGTERM, SIGINT and SIGUSR1 blocked and takes them one at a
 * time with sigtimedwait(): a signal that arrives while it is busy (reaping, forking) waits
 * pending instead of being lost, and a worker's restart backoff is a timeout, not a sleep
 * that would delay a shutdown. */
#include "workers.h"
#include "clock.h"
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
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_BACKOFF_MS 5000

/* The parent's own fds (the port-reserving socket, the ready pipe's read end): a child
 * closes them first thing, so no worker holds what only the supervisor uses. */
static int parent_fds[2] = {-1, -1};

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

/* The child: one ordinary server process. Writes one byte to `ready` once listening. */
static void workers_child(const struct server_config *cfg, int ready)
{
	struct server srv;
	int code;

	for (int i = 0; i < 2; i++)
		if (parent_fds[i] >= 0)
			close(parent_fds[i]);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the supervisor's blocked set is not ours */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (server_init(&srv, cfg, NULL, 1, &code) < 0) {
		server_free(&srv);
		if (write(ready, "f", 1) != 1)
			log_warn("worker ready pipe: %s", strerror(errno));
		workers_child_exit(code);
	}
	if (write(ready, "r", 1) != 1)
		log_warn("worker ready pipe: %s", strerror(errno));
	close(ready);
	code = server_run(&srv);
	server_free(&srv);
	log_flush_suppressed();
	workers_child_exit(code);
}

static pid_t workers_spawn(const struct server_config *cfg, int ready, int index)
{
	pid_t pid = fork();

	if (pid == 0) {
		metrics_set_worker(index); /* worker 0 serves /metrics */
		workers_child(cfg, ready);
	}
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
static int workers_on_signal(int sig, const pid_t *pids, int n, int alive, int *stopping)
{
	if (sig == SIGUSR1) {
		workers_signal_all(pids, n, SIGUSR1);
		return 0;
	}
	if (sig != SIGTERM && sig != SIGINT)
		return 0;
	if (*stopping) {
		log_warn("second signal: killing the workers");
		workers_signal_all(pids, n, SIGKILL);
		return 1;
	}
	*stopping = 1;
	log_info("graceful drain: forwarding SIGTERM to %d workers", alive);
	workers_signal_all(pids, n, SIGTERM);
	return 0;
}

struct supervisor {
	const struct server_config *cfg;
	pid_t *pids;
	int n, ready;
	int alive, stopping, rc;
	long backoff;                /* ms before the next restart; doubles to MAX_BACKOFF_MS */
	int64_t restart_at[64];      /* monotonic ms at which worker i is restarted; 0 = none */
};

/* Reaps every exited worker: after the shutdown it is counted out, before it a restart is
 * scheduled after the backoff. */
static void workers_reap(struct supervisor *sv)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < sv->n; i++) {
			if (sv->pids[i] != pid)
				continue;
			sv->pids[i] = 0;
			metrics_worker_exited(i);
			if (sv->stopping) {
				sv->alive--;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					sv->rc = 1;
				break;
			}
			log_warn("worker %d died (status %d); restarting in %ldms", (int)pid, status,
				 sv->backoff);
			sv->restart_at[i] = clock_mono_ms() + sv->backoff;
			sv->backoff = sv->backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : sv->backoff * 2;
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
			sv->pids[i] = workers_spawn(sv->cfg, sv->ready, i);
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
static int workers_supervise(const struct server_config *cfg, pid_t *pids, int n, int ready,
			     const sigset_t *set)
{
	struct supervisor sv = {.cfg = cfg, .pids = pids, .n = n, .ready = ready, .alive = n,
				.backoff = 100};

	while (sv.alive > 0) {
		int64_t wait_ms;
		struct timespec ts;
		int sig;

		workers_reap(&sv);
		wait_ms = workers_restart_due(&sv);
		if (sv.alive <= 0)
			break;
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		sig = sigtimedwait(set, NULL, wait_ms >= 0 ? &ts : NULL);
		if (sig > 0 && workers_on_signal(sig, pids, n, sv.alive, &sv.stopping))
			return 1;
	}
	return sv.rc;
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

int workers_run(const struct server_config *base_cfg, const char *port_file)
{
	struct server_config cfg = *base_cfg;
	pid_t pids[64] = {0};
	int n = (int)cfg.workers, pipefd[2] = {-1, -1}, rc = 1, reserve;
	sigset_t set;

	reserve = workers_reserve_port(&cfg);
	if (reserve < 0)
		return 2;
	if (metrics_prefork(&cfg, n, &rc) < 0)
		goto out;
	if (pipe(pipefd) < 0) {
		log_error("pipe: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	parent_fds[0] = reserve;
	parent_fds[1] = pipefd[0];
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < n; i++)
		pids[i] = workers_spawn(&cfg, pipefd[1], i);
	if (workers_wait_ready(pids, n, pipefd[0]) < 0) {
		log_error("a worker failed to start");
		workers_signal_all(pids, n, SIGKILL);
		while (wait(NULL) > 0)
			;
		rc = 2;
		goto out;
	}
	if (port_file != NULL && server_write_port_file(port_file, sock_local_port(reserve)) < 0)
		log_error("port file %s: %s", port_file, strerror(errno));
	log_info("%d workers listening on %s", n, cfg.listen);
	rc = workers_supervise(&cfg, pids, n, pipefd[1], &set);
out:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	close(reserve);
	return rc;
}
