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
 * which forwards one SIGTERM - one shutdown, not a "second signal". A worker whose parent
 * dies, even by SIGKILL, drains too: it asks the kernel for a signal of its own then
 * (WORKERS_PARENT_DEATH_SIGNAL), which may come more than once.
 *
 * The supervisor keeps its signals (SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGUSR2)
 * blocked and reads them from a signalfd in a poll() loop beside a new generation's ready
 * pipe: a signal that arrives while it is busy (reaping, forking) waits pending instead of
 * being lost, and a worker's restart backoff is a timeout, not a sleep that would delay a
 * shutdown.
 *
 * Reload (SIGHUP): the parent reads the config again (reload.h) and sends the parsed
 * config to every worker over its control socket (control.h); workers never read the
 * file. A changed `workers` starts or stops workers (new workers get new sockets in the
 * group; leaving ones drain as at SIGTERM and their sockets close); a changed listen,
 * metrics_listen or mode starts a new generation (upgrade). Upgrade (SIGUSR2): a new
 * generation of the executable gets every listener and the /metrics one (upgrade.h); once
 * it is ready, every worker is told to hand over (lifecycle.h) and the parent exits when
 * the last one has. */
#include "workers.h"
#include "clock.h"
#include "control.h"
#include "cwboard.h"
#include "listener.h"
#include "log.h"
#include "portfile.h"
#include "metrics.h"
#include "reload.h"
#include "sdnotify.h"
#include "server.h"
#include "sock.h"
#include "upgrade.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
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

#define WORKERS_MAX 64 /* the largest `workers` (config.c) */

/* The parent's state: what it gives every worker, and what it knows about each one. */
struct supervisor {
	struct server_config *cfg;   /* a reload changes it */
	struct server_params params; /* every worker's, but for its index */
	/* The parent's own fds (the ready pipe's read end): a child closes them first thing,
	 * so no worker holds what only the supervisor uses. */
	int parent_fds[2];
	int lfds[WORKERS_MAX]; /* worker i's listener; a child closes the others' copies */
	int ctl[WORKERS_MAX];  /* the parent's end of worker i's control socket */
	pid_t parent;	       /* the supervisor itself, for a child to find out it was orphaned */
	pid_t pids[WORKERS_MAX];
	int n;	/* workers wanted */
	int hi; /* slots ever used: workers beyond n may still be draining */
	int ready;
	int stopping, rc;
	int handing_over; /* a new generation serves the listeners */
	int shared;	  /* one adopted socket (systemd) serves every worker */
	struct upgrade up;
	int64_t up_due, up_start; /* monotonic ms */
	int reload_ok;
	int64_t reload_time_ms;
	int64_t started[WORKERS_MAX];	 /* monotonic ms at which worker i was forked */
	int64_t backoff[WORKERS_MAX];	 /* ms before worker i's next restart */
	int64_t restart_at[WORKERS_MAX]; /* monotonic ms at which worker i is restarted; 0 = none */
	int64_t deaths[CRASH_LOOP_MAX];	 /* when the last crash_loop_deaths workers died (a ring) */
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
static void workers_child(const struct supervisor *sv, int index, int control)
{
	struct server_params p = sv->params;
	struct server srv;
	int code, ready = sv->ready;
	sigset_t none;

	for (int i = 0; i < 2; i++)
		if (sv->parent_fds[i] >= 0)
			close(sv->parent_fds[i]);
	for (int i = 0; i < sv->hi; i++) {
		if (sv->lfds[i] >= 0 && sv->lfds[i] != sv->lfds[index])
			close(sv->lfds[i]);
		if (sv->ctl[i] >= 0)
			close(sv->ctl[i]);
	}
	if (sv->up.rfd >= 0)
		close(sv->up.rfd);
	p.listen_fd = sv->lfds[index];
	p.control_fd = control;
	p.ready_fd = -1;
	p.worker = index;
	p.reuseport = 1;    /* the port's other sockets are the other workers' */
	p.port_file = NULL; /* the parent writes it once every worker listens */
	p.parent_death_signal = WORKERS_PARENT_DEATH_SIGNAL;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the supervisor's blocked set is not ours */
	setpgid(0, 0);
	/* The parent may have died between fork() and this prctl(): then no signal will ever
	 * come (the orphan's new parent is init), so it is looked for afterwards. */
	if (prctl(PR_SET_PDEATHSIG, p.parent_death_signal) < 0 || getppid() != sv->parent) {
		log_error("worker %d: the supervisor died before the worker started: exiting",
			  index);
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

/* Forks worker index with a new control socket (SOCK_SEQPACKET: one message a datagram). */
static pid_t workers_spawn(struct supervisor *sv, int index)
{
	int pair[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		log_error("socketpair: %s", strerror(errno));
		return -1;
	}
	if (sv->ctl[index] >= 0)
		close(sv->ctl[index]);
	sv->ctl[index] = -1;
	pid = fork();
	if (pid == 0)
		workers_child(sv, index, pair[1]);
	close(pair[1]);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		close(pair[0]);
		return -1;
	}
	sv->ctl[index] = pair[0];
	return pid;
}

static void workers_signal_all(const struct supervisor *sv, int sig)
{
	for (int i = 0; i < sv->hi; i++)
		if (sv->pids[i] > 0)
			kill(sv->pids[i], sig);
}

/* Workers running or waiting for their restart. */
static int workers_alive(const struct supervisor *sv)
{
	int n = 0;

	for (int i = 0; i < sv->hi; i++)
		n += sv->pids[i] > 0 || sv->restart_at[i] != 0;
	return n;
}

/* One message to every live worker; a worker whose socket is full (it is stuck) misses it,
 * with a warning. */
static void workers_tell_all(struct supervisor *sv, int type)
{
	struct control_msg msg = {.type = type,
				  .reload_ok = sv->reload_ok,
				  .reload_time_ms = sv->reload_time_ms,
				  .cfg = *sv->cfg};

	for (int i = 0; i < sv->hi; i++)
		if (sv->pids[i] > 0 && sv->ctl[i] >= 0 &&
		    send(sv->ctl[i], &msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_warn("worker %d (pid %d): control socket: %s", i, (int)sv->pids[i],
				 strerror(errno));
}

static void workers_close_listener(struct supervisor *sv, int i)
{
	int shared = 0;

	for (int j = 0; j < sv->hi; j++)
		shared |= j != i && sv->lfds[j] == sv->lfds[i];
	if (sv->lfds[i] >= 0 && !shared)
		close(sv->lfds[i]);
	sv->lfds[i] = -1;
}

/* The drain: the parent gives up its copies of the listeners, so each socket closes when
 * its worker has accepted what its drain takes and closed its own copy. */
static void workers_stop_listening(struct supervisor *sv)
{
	for (int i = 0; i < WORKERS_MAX; i++)
		workers_close_listener(sv, i);
}

static void workers_stop(struct supervisor *sv, int rc, const char *why)
{
	if (why != NULL)
		log_info("%s: forwarding SIGTERM to %d workers", why, workers_alive(sv));
	sv->stopping = 1;
	if (rc)
		sv->rc = rc;
	sdnotify_stopping();
	workers_signal_all(sv, SIGTERM);
	workers_stop_listening(sv);
	if (sv->up.pid > 0 && !sv->up.ready)
		upgrade_abort(&sv->up);
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
	if (i >= sv->n || sv->handing_over) { /* it was told to leave */
		log_info("worker %d (pid %d) %s after %lldms", i, (int)pid, how, (long long)life);
		return;
	}
	if (workers_crash_loop(sv, now)) {
		log_error("worker %d (pid %d) %s after %lldms: %lld worker deaths within %lldms "
			  "(crash_loop_deaths, crash_loop_window): stopping the workers, exit 1",
			  i, (int)pid, how, (long long)life, (long long)sv->cfg->crash_loop_deaths,
			  (long long)sv->cfg->crash_loop_window);
		workers_stop(sv, 1, NULL);
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

static void workers_upgrade_reaped(struct supervisor *sv, int status);

/* Reaps every exited child: a worker after the shutdown is counted out, before it a
 * restart is scheduled (workers_died); its figures are retired first, before a
 * replacement can use its slot. The other child is a new generation. */
static void workers_reap(struct supervisor *sv)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == sv->up.pid) {
			workers_upgrade_reaped(sv, status);
			continue;
		}
		for (int i = 0; i < sv->hi; i++) {
			if (sv->pids[i] != pid)
				continue;
			sv->pids[i] = 0;
			metrics_worker_exited(sv->params.slots, i);
			if (i >= sv->n)
				workers_close_listener(sv, i);
			if (!sv->stopping)
				workers_died(sv, i, pid, status);
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				sv->rc = 1;
			break;
		}
	}
}

/* Starts the restarts that are due (or drops them once stopping); returns the ms until
 * the next one, or -1 when none is scheduled. */
static int64_t workers_restart_due(struct supervisor *sv)
{
	int64_t now = clock_mono_ms(), next = -1;

	for (int i = 0; i < sv->hi; i++) {
		if (sv->restart_at[i] == 0)
			continue;
		if (sv->stopping || i >= sv->n) {
			sv->restart_at[i] = 0;
		} else if (now >= sv->restart_at[i]) {
			sv->restart_at[i] = 0;
			sv->started[i] = now;
			sv->pids[i] = workers_spawn(sv, i);
			if (sv->pids[i] < 0)
				sv->pids[i] = 0;
		} else if (next < 0 || sv->restart_at[i] - now < next) {
			next = sv->restart_at[i] - now;
		}
	}
	return next;
}

/* ---- upgrade ----------------------------------------------------------------------- */

static void workers_upgrade_failed(struct supervisor *sv, const char *why)
{
	log_error("upgrade: the new generation (pid %d, %s) %s; this one keeps serving",
		  (int)sv->up.pid, sv->params.exe, why);
	upgrade_abort(&sv->up);
}

/* The new generation gets every listener and the /metrics one, in slot order. */
static void workers_upgrade(struct supervisor *sv, const char *reason)
{
	const char *names[WORKERS_MAX + 1];
	int fds[WORKERS_MAX + 1], k = 0;

	if (sv->stopping || sv->handing_over || sv->up.pid > 0) {
		log_warn("%s: %s: nothing done", reason,
			 sv->up.pid > 0 && !sv->handing_over ? "an upgrade is under way"
							     : "this generation is ending");
		return;
	}
	if (sv->params.exe == NULL) {
		log_error("%s: the executable's path was not found at start: no upgrade", reason);
		return;
	}
	for (int i = 0; i < sv->n && !(sv->shared && i > 0); i++) {
		names[k] = "listen";
		fds[k++] = sv->lfds[i];
	}
	if (sv->params.metrics_fd >= 0) {
		names[k] = "metrics";
		fds[k++] = sv->params.metrics_fd;
	}
	if (upgrade_spawn(&sv->up, sv->params.exe, sv->params.argv, fds, names, k,
			  sv->params.generation + 1) < 0)
		return;
	sv->up_start = clock_mono_ms();
	sv->up_due = sv->up_start + sv->cfg->upgrade_timeout;
	log_info("%s: starting a new generation: %s (pid %d)", reason, sv->params.exe,
		 (int)sv->up.pid);
}

static void workers_upgrade_ready(struct supervisor *sv)
{
	char why[160];
	int rc = upgrade_read(&sv->up, why, sizeof(why));

	if (rc == 0)
		return;
	if (rc < 0) {
		workers_upgrade_failed(sv, why);
		return;
	}
	close(sv->up.rfd);
	sv->up.rfd = -1;
	log_info("upgrade: the new generation (pid %d) is ready after %lldms: %d workers hand "
		 "over",
		 (int)sv->up.pid, (long long)(clock_mono_ms() - sv->up_start), workers_alive(sv));
	sdnotify_mainpid(sv->up.pid);
	sv->handing_over = 1;
	workers_tell_all(sv, CONTROL_HANDOVER);
	for (int i = 0; i < sv->hi; i++)
		sv->restart_at[i] = 0; /* a worker waiting for its restart is not needed */
}

/* The new generation ended: before it was ready, the upgrade failed; after, this one
 * serves again (its workers watch their listeners again; those that left are restarted). */
static void workers_upgrade_reaped(struct supervisor *sv, int status)
{
	char how[64];

	workers_status_str(status, how, sizeof(how));
	if (!sv->up.ready) {
		sv->up.pid = 0; /* reaped: upgrade_abort must not wait for it */
		workers_upgrade_failed(sv, how);
		return;
	}
	log_error("upgrade: the new generation (pid %d) %s after it took over; %s", (int)sv->up.pid,
		  how, sv->stopping ? "this one is stopping already" : "this one serves again");
	upgrade_clear(&sv->up);
	if (sv->stopping)
		return;
	sdnotify_mainpid(getpid());
	sv->handing_over = 0;
	workers_tell_all(sv, CONTROL_RESUME);
	for (int i = 0; i < sv->n; i++)
		if (sv->pids[i] <= 0 && sv->restart_at[i] == 0)
			sv->restart_at[i] = clock_mono_ms();
}

/* ---- reload ------------------------------------------------------------------------ */

/* workers changed: new slots get a socket of the group and a worker; slots beyond the new
 * count drain (SIGTERM) and their sockets close with them. */
static void workers_resize(struct supervisor *sv, int n)
{
	int code, old = sv->n;

	for (int i = old; i < n; i++) {
		if (sv->pids[i] > 0) /* still draining from an earlier shrink: it stays */
			continue;
		if (sv->lfds[i] < 0)
			sv->lfds[i] = sv->shared ? sv->lfds[0] : listener_open(sv->cfg, 1, &code);
		if (sv->lfds[i] < 0)
			return; /* logged; the count stays at i */
		sv->n = i + 1;
		sv->hi = sv->hi > sv->n ? sv->hi : sv->n;
		sv->backoff[i] = RESTART_BACKOFF_MS;
		sv->started[i] = clock_mono_ms();
		sv->pids[i] = workers_spawn(sv, i);
		if (sv->pids[i] < 0)
			sv->pids[i] = 0;
	}
	for (int i = n; i < old; i++) {
		sv->restart_at[i] = 0;
		if (sv->pids[i] > 0)
			kill(sv->pids[i], SIGTERM);
		else
			workers_close_listener(sv, i);
	}
	sv->n = n < old ? n : sv->n;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void workers_reload(struct supervisor *sv)
{
	struct server_config next;
	char err[CONF_ERR_MAX], keys[1024];
	unsigned kinds;

	if (sv->stopping || sv->handing_over) {
		log_warn("SIGHUP: this generation is ending: no reload");
		return;
	}
	sdnotify_reloading();
	sv->reload_time_ms = wall_ms();
	sv->reload_ok = config_load(&next, sv->params.conf_args, err, sizeof(err)) == 0;
	if (!sv->reload_ok) {
		log_error("reload: %s: nothing changed", err);
		workers_tell_all(sv, CONTROL_CONFIG); /* the result only: the same config */
		sdnotify_ready();
		return;
	}
	reload_keep_port(sv->cfg, &next);
	kinds = reload_diff(sv->cfg, &next, keys, sizeof(keys));
	if (kinds & RELOAD_GENERATION) {
		log_info("reload: changed %s: it needs new listeners", keys);
		sdnotify_ready();
		workers_upgrade(sv, "reload");
		return;
	}
	reload_copy_live(sv->cfg, &next);
	log_set_level((enum log_level)sv->cfg->log_level);
	for (int i = 0; i < sv->n; i++)
		if (sv->lfds[i] >= 0 && listener_apply(sv->cfg, sv->lfds[i]) < 0)
			log_warn("reload: listener options and backlog: %s", strerror(errno));
	log_info("reload: %s%s", kinds ? "changed " : "nothing changed", keys);
	workers_tell_all(sv, CONTROL_CONFIG);
	if (kinds & RELOAD_WORKERS) {
		workers_resize(sv, (int)next.workers);
		sv->cfg->workers = sv->n;
	}
	sdnotify_ready();
}

/* ---- the loop ---------------------------------------------------------------------- */

/* A signal reached the parent. SIGUSR1: each worker logs its own counters. The first
 * SIGTERM/SIGINT is forwarded (one drain); a second kills the workers. Returns 1 when the
 * supervisor must return at once. */
static int workers_on_signal(struct supervisor *sv, int sig)
{
	if (sig == SIGUSR1) {
		workers_signal_all(sv, SIGUSR1);
		/* the sum, with the connections of dead workers (lost) */
		metrics_log_total(sv->params.slots);
	} else if (sig == SIGHUP) {
		workers_reload(sv);
	} else if (sig == SIGUSR2) {
		workers_upgrade(sv, "SIGUSR2");
	} else if ((sig == SIGTERM || sig == SIGINT) && sv->stopping) {
		log_warn("second signal: killing the workers");
		workers_signal_all(sv, SIGKILL);
		return 1;
	} else if (sig == SIGTERM || sig == SIGINT) {
		workers_stop(sv, 0, "graceful drain");
	}
	return 0;
}

/* Waits up to wait_ms (-1: no limit) for a signal or the new generation's ready pipe. */
static int workers_wait(struct supervisor *sv, int sigfd, int64_t wait_ms)
{
	struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN},
			      {.fd = sv->up.rfd, .events = POLLIN}};
	struct signalfd_siginfo si;

	if (sv->up.rfd >= 0) {
		int64_t due = sv->up_due - clock_mono_ms();

		wait_ms = wait_ms < 0 || due < wait_ms ? (due > 0 ? due : 0) : wait_ms;
	}
	if (poll(p, sv->up.rfd >= 0 ? 2 : 1, (int)wait_ms) < 0 && errno != EINTR)
		log_warn("poll: %s", strerror(errno));
	if (sv->up.rfd >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
		workers_upgrade_ready(sv);
	else if (sv->up.rfd >= 0 && !sv->up.ready && clock_mono_ms() >= sv->up_due)
		workers_upgrade_failed(sv, "was not ready within upgrade_timeout: killed");
	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (workers_on_signal(sv, (int)si.ssi_signo))
			return 1;
	return 0;
}

/* Waits for the workers, restarting one that dies before the shutdown. Returns 0 if all
 * exited 0 after a shutdown. */
static int workers_supervise(struct supervisor *sv, int sigfd)
{
	int64_t now = clock_mono_ms();

	for (int i = 0; i < sv->n; i++) {
		sv->started[i] = now;
		sv->backoff[i] = RESTART_BACKOFF_MS;
	}
	for (;;) {
		int64_t wait_ms;

		workers_reap(sv);
		wait_ms = workers_restart_due(sv);
		if (workers_alive(sv) == 0)
			break;
		if (workers_wait(sv, sigfd, wait_ms))
			return 1;
	}
	if (sv->handing_over)
		log_info("handover complete: every worker of this generation has exited");
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

/* Worker 0's census for the others (cwboard.h): room for every connection the workers
 * may hold plus their accept queues, in memory that is only allocated where a post
 * writes. Without it each worker takes its own census, as a lone server does. */
static struct cwboard *workers_map_board(const struct server_config *cfg, int n)
{
	size_t cap = (size_t)n * ((size_t)cfg->max_connections + (size_t)cfg->backlog);
	struct cwboard *b = cwboard_map(cap);

	if (b == NULL)
		log_warn("workers: mmap for a board of %zu CLOSE_WAIT sockets: %s (each worker "
			 "takes its own census)",
			 cap, strerror(errno));
	return b;
}

/* The listeners: adopted ones (an upgrade passes one per worker; systemd one socket
 * that every worker shares), else new ones. Adopted sockets beyond the workers close
 * (their queues survive only with tcp_migrate_req=1, warned about at start). */
static int workers_listeners(struct supervisor *sv, int *rc)
{
	const struct server_params *p = &sv->params;
	int k = p->nadopted < sv->n ? p->nadopted : sv->n;

	if (p->nadopted == 0)
		return workers_listen(sv->cfg, sv->lfds, sv->n, rc);
	sv->shared = p->nadopted == 1 && !sock_is_reuseport(p->adopted[0]);
	for (int i = 0; i < sv->n; i++)
		sv->lfds[i] = sv->shared ? p->adopted[0] : i < k ? p->adopted[i] : -1;
	for (int i = k; i < p->nadopted && !sv->shared; i++)
		close(p->adopted[i]);
	if (!sv->shared && p->nadopted > sv->n)
		log_warn("LISTEN_FDS: %d listeners passed for %d workers: %d closed", p->nadopted,
			 sv->n, p->nadopted - sv->n);
	snprintf(strrchr(sv->cfg->listen, ':') + 1,
		 sizeof(sv->cfg->listen) -
		     (size_t)(strrchr(sv->cfg->listen, ':') + 1 - sv->cfg->listen),
		 "%d", sock_local_port(sv->lfds[0]));
	for (int i = k; i < sv->n && !sv->shared; i++) {
		sv->lfds[i] = listener_open(sv->cfg, 1, rc);
		if (sv->lfds[i] < 0)
			return -1;
	}
	for (int i = 0; i < sv->n; i++)
		if (listener_apply(sv->cfg, sv->lfds[i]) < 0)
			log_warn("listen %s: socket options, backlog: %s", sv->cfg->listen,
				 strerror(errno));
	workers_warn_migrate();
	return 0;
}

static int workers_signalfd(void)
{
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGUSR2};
	sigset_t set;
	int fd;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		log_error("signalfd: %s", strerror(errno));
	return fd;
}

static int workers_start(struct supervisor *sv, int rfd)
{
	for (int i = 0; i < sv->n; i++) {
		sv->pids[i] = workers_spawn(sv, i);
		if (sv->pids[i] < 0)
			sv->pids[i] = 0;
	}
	if (workers_wait_ready(sv->pids, sv->n, rfd) < 0) {
		log_error("a worker failed to start");
		workers_signal_all(sv, SIGKILL);
		while (wait(NULL) > 0)
			;
		return -1;
	}
	/* Only now the supervisor's own log writer: a thread that is starting up allocates,
	 * and GCC 12's AddressSanitizer does not hold its allocator's lock across fork(), so
	 * a worker forked meanwhile could start with that lock held for good (seen: an ASan
	 * worker stuck at start, both its threads on the allocator's lock). Later forks
	 * (restarts, a reload's new workers) find the writer idle or inside write(2). Until
	 * here the supervisor's few lines are written directly. */
	log_start((size_t)sv->cfg->log_buffer);
	return 0;
}

int workers_run(const struct server_config *base_cfg, const struct server_params *params)
{
	struct server_config cfg = *base_cfg;
	struct supervisor sv = {.cfg = &cfg,
				.params = *params,
				.n = (int)cfg.workers,
				.hi = (int)cfg.workers,
				.parent = getpid(),
				.reload_ok = 1,
				.up = {.rfd = -1}};
	int pipefd[2] = {-1, -1}, rc = 1, sigfd = -1;

	for (int i = 0; i < WORKERS_MAX; i++)
		sv.lfds[i] = sv.ctl[i] = -1;
	sv.parent_fds[0] = sv.parent_fds[1] = -1;
	if (workers_listeners(&sv, &rc) < 0)
		goto out;
	/* Slots for every worker count a reload may ask for. */
	if (metrics_prefork(&cfg, WORKERS_MAX, &sv.params, &rc) < 0)
		goto out;
	rc = 1;
	sv.params.cwboard = workers_map_board(&cfg, WORKERS_MAX);
	if (pipe(pipefd) < 0) {
		log_error("pipe: %s", strerror(errno));
		goto out;
	}
	sv.parent_fds[1] = pipefd[0];
	sv.ready = pipefd[1];
	sigfd = workers_signalfd();
	if (sigfd < 0)
		goto out;
	if (workers_start(&sv, pipefd[0]) < 0) {
		rc = 2;
		goto out;
	}
	log_info("%d workers listening on %s", sv.n, cfg.listen);
	if (params->port_file != NULL &&
	    portfile_write(params->port_file, sock_local_port(sv.lfds[0])) < 0)
		log_error("port file %s: %s", params->port_file, strerror(errno));
	upgrade_report_ready(params->ready_fd);
	sdnotify_ready();
	rc = workers_supervise(&sv, sigfd);
	metrics_log_total(sv.params.slots);
out:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	if (sigfd >= 0)
		close(sigfd);
	workers_stop_listening(&sv);
	cwboard_unmap(sv.params.cwboard);
	return rc;
}
