#include "lifecycle.h"
#include "clock.h"
#include "control.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "sdnotify.h"
#include "server.h"
#include "watchdog.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void lifecycle_on_signal(evutil_socket_t sig, short what, void *arg);
static void lifecycle_on_control(evutil_socket_t fd, short what, void *arg);
static void lifecycle_on_ready(evutil_socket_t fd, short what, void *arg);
static void lifecycle_on_upgrade_due(evutil_socket_t fd, short what, void *arg);
static void lifecycle_on_handover_due(evutil_socket_t fd, short what, void *arg);

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handover ---------------------------------------------------------------------- */

/* The new generation is ready: stop watching the listeners (keeping them, see the header),
 * serve the connections until they end or handover_timeout. */
static void lifecycle_handover(struct server *srv)
{
	struct timeval tv = clock_ms_to_tv(srv->cfg->handover_timeout);

	if (srv->draining || srv->handing_over)
		return;
	srv->handing_over = 1;
	watchdog_set_shared_port(srv->watchdog, 1); /* the new generation's sockets */
	if (srv->ev_accept != NULL)
		event_del(srv->ev_accept);
	if (srv->ev_accept_resume != NULL)
		evtimer_del(srv->ev_accept_resume);
	metrics_handover(srv->metrics, 1);
	log_info("handover: the new generation serves the listeners; %llu connections left "
		 "here (handover_timeout %lldms)",
		 (unsigned long long)srv->stats.open, (long long)srv->cfg->handover_timeout);
	if (evtimer_add(srv->ev_handover, &tv) < 0)
		lifecycle_on_handover_due(-1, 0, srv);
	server_conn_closed(srv); /* none open: this generation is done */
}

/* The new generation ended after it took over: serve again unless the drain began. */
static void lifecycle_resume(struct server *srv)
{
	if (!srv->handing_over || srv->draining || srv->lfd < 0)
		return;
	srv->handing_over = 0;
	evtimer_del(srv->ev_handover);
	metrics_handover(srv->metrics, 0);
	if (event_add(srv->ev_accept, NULL) < 0)
		log_error("resuming the listener failed: no new connection is accepted");
}

static void lifecycle_on_handover_due(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->draining)
		return;
	log_info("handover_timeout: draining the %llu connections left",
		 (unsigned long long)srv->stats.open);
	server_drain(srv);
}

/* ---- upgrade (alone) --------------------------------------------------------------- */

static void lifecycle_upgrade_failed(struct server *srv, const char *why)
{
	log_error("upgrade: the new generation (pid %d, %s) %s; this one keeps serving",
		  (int)srv->upgrade.pid, srv->params.exe, why);
	event_del(srv->ev_upgrade);
	evtimer_del(srv->ev_upgrade_due);
	upgrade_abort(&srv->upgrade);
}

static void lifecycle_upgrade(struct server *srv, const char *reason)
{
	const char *names[2] = {"listen", "metrics"};
	int fds[2] = {srv->lfd, metrics_listener_fd(srv->metrics)};
	struct timeval tv = clock_ms_to_tv(srv->cfg->upgrade_timeout);

	if (srv->draining || srv->handing_over || srv->upgrade.pid > 0) {
		log_warn("%s: %s: nothing done", reason,
			 srv->upgrade.pid > 0 && !srv->handing_over ? "an upgrade is under way"
								    : "this generation is ending");
		return;
	}
	if (srv->params.exe == NULL) {
		log_error("%s: the executable's path was not found at start: no upgrade", reason);
		return;
	}
	if (upgrade_spawn(&srv->upgrade, srv->params.exe, srv->params.argv, fds, names,
			  fds[1] >= 0 ? 2 : 1, srv->params.generation + 1) < 0)
		return;
	srv->upgrade_start_us = clock_mono_us();
	log_info("%s: starting a new generation: %s (pid %d)", reason, srv->params.exe,
		 (int)srv->upgrade.pid);
	event_assign(srv->ev_upgrade, srv->base, srv->upgrade.rfd, EV_READ | EV_PERSIST,
		     lifecycle_on_ready, srv);
	if (event_add(srv->ev_upgrade, NULL) < 0 || evtimer_add(srv->ev_upgrade_due, &tv) < 0)
		lifecycle_upgrade_failed(srv, "cannot be watched");
}

static void lifecycle_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	char why[160];
	int rc = upgrade_read(&srv->upgrade, why, sizeof(why));

	(void)fd;
	(void)what;
	if (rc == 0)
		return;
	if (rc < 0) {
		lifecycle_upgrade_failed(srv, why);
		return;
	}
	event_del(srv->ev_upgrade);
	evtimer_del(srv->ev_upgrade_due);
	log_info("upgrade: the new generation (pid %d) is ready after %lldms",
		 (int)srv->upgrade.pid,
		 (long long)((clock_mono_us() - srv->upgrade_start_us) / 1000));
	sdnotify_mainpid(srv->upgrade.pid);
	lifecycle_handover(srv);
}

static void lifecycle_on_upgrade_due(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	lifecycle_upgrade_failed(srv, "was not ready within upgrade_timeout: killed");
}

/* SIGCHLD alone: the only child is a new generation. Before it is ready its pipe tells
 * (EOF); after, this is how its end is known. */
static void lifecycle_reap(struct server *srv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != srv->upgrade.pid || !srv->upgrade.ready)
			continue;
		log_error("upgrade: the new generation (pid %d) %s %d after it took over; %s",
			  (int)pid,
			  WIFEXITED(status) ? "exited with status" : "was killed by signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			  srv->draining ? "this one is draining already" : "this one serves again");
		upgrade_clear(&srv->upgrade);
		sdnotify_mainpid(getpid());
		lifecycle_resume(srv);
	}
}

/* ---- reload ------------------------------------------------------------------------ */

/* Applies a config whose changes are of the kinds now and new-conns. */
static void lifecycle_apply(struct server *srv, const struct server_config *next)
{
	reload_copy_live(&srv->cfg_own, next);
	log_set_level((enum log_level)srv->cfg->log_level);
	server_config_changed(srv);
	/* A worker's listener is its parent's to configure (the same socket). */
	if (srv->params.control_fd < 0 && srv->lfd >= 0 && listener_apply(srv->cfg, srv->lfd) < 0)
		log_warn("reload: listener options and backlog: %s", strerror(errno));
}

static void lifecycle_reload(struct server *srv)
{
	struct server_config next;
	char err[CONF_ERR_MAX], keys[1024];
	unsigned kinds;

	if (srv->draining || srv->handing_over) {
		log_warn("SIGHUP: this generation is ending: no reload");
		return;
	}
	sdnotify_reloading();
	srv->stats.reload_time_s = (uint64_t)(wall_ms() / 1000);
	if (config_load(&next, srv->params.conf_args, err, sizeof(err)) < 0) {
		srv->stats.reload_ok = 0;
		log_error("reload: %s: nothing changed", err);
		sdnotify_ready();
		return;
	}
	srv->stats.reload_ok = 1;
	reload_keep_port(srv->cfg, &next);
	kinds = reload_diff(srv->cfg, &next, keys, sizeof(keys));
	if (kinds & (RELOAD_GENERATION | RELOAD_WORKERS)) {
		log_info("reload: changed %s: it needs new listeners or workers", keys);
		sdnotify_ready();
		lifecycle_upgrade(srv, "reload");
		return;
	}
	lifecycle_apply(srv, &next);
	log_info("reload: %s%s", kinds ? "changed " : "nothing changed", keys);
	sdnotify_ready();
}

/* ---- events ------------------------------------------------------------------------ */

static void lifecycle_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP)
		lifecycle_reload(srv);
	else if (sig == SIGUSR2)
		lifecycle_upgrade(srv, "SIGUSR2");
	else if (sig == SIGCHLD)
		lifecycle_reap(srv);
}

static void lifecycle_on_control(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct control_msg msg;
	ssize_t n = recv(fd, &msg, sizeof(msg), MSG_DONTWAIT);

	(void)what;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(msg)) {
		/* 0: the parent is gone (PR_SET_PDEATHSIG sends the parent-death signal). */
		if (n < 0)
			log_warn("control socket: %s", strerror(errno));
		event_del(srv->ev_life[0]);
		return;
	}
	srv->stats.reload_ok = (uint64_t)msg.reload_ok;
	srv->stats.reload_time_s = (uint64_t)(msg.reload_time_ms / 1000);
	if (msg.type == CONTROL_CONFIG)
		lifecycle_apply(srv, &msg.cfg);
	else if (msg.type == CONTROL_HANDOVER)
		lifecycle_handover(srv);
	else if (msg.type == CONTROL_RESUME)
		lifecycle_resume(srv);
}

int lifecycle_start(struct server *srv)
{
	static const int sigs[3] = {SIGHUP, SIGUSR2, SIGCHLD};

	srv->ev_handover = evtimer_new(srv->base, lifecycle_on_handover_due, srv);
	srv->ev_upgrade_due = evtimer_new(srv->base, lifecycle_on_upgrade_due, srv);
	srv->ev_upgrade = event_new(srv->base, -1, 0, lifecycle_on_ready, srv);
	if (srv->ev_handover == NULL || srv->ev_upgrade_due == NULL || srv->ev_upgrade == NULL)
		return -1;
	if (srv->params.control_fd >= 0) {
		signal(SIGHUP, SIG_IGN);
		signal(SIGUSR2, SIG_IGN);
		srv->ev_life[0] = event_new(srv->base, srv->params.control_fd, EV_READ | EV_PERSIST,
					    lifecycle_on_control, srv);
		return srv->ev_life[0] != NULL && event_add(srv->ev_life[0], NULL) == 0 ? 0 : -1;
	}
	/* Started by an upgrade, a lone server shares the port with the old generation's
	 * sockets for as long as that one serves: they are not its unaccepted ones. */
	if (srv->params.generation > 1)
		watchdog_set_shared_port(srv->watchdog, 1);
	for (int i = 0; i < 3; i++) {
		srv->ev_life[i] = evsignal_new(srv->base, sigs[i], lifecycle_on_signal, srv);
		if (srv->ev_life[i] == NULL || evsignal_add(srv->ev_life[i], NULL) < 0)
			return -1;
	}
	return 0;
}

void lifecycle_stop(struct server *srv)
{
	for (int i = 0; i < 3; i++)
		if (srv->ev_life[i] != NULL)
			event_free(srv->ev_life[i]);
	if (srv->ev_upgrade != NULL)
		event_free(srv->ev_upgrade);
	if (srv->ev_upgrade_due != NULL)
		event_free(srv->ev_upgrade_due);
	if (srv->ev_handover != NULL)
		event_free(srv->ev_handover);
	/* A new generation not yet ready dies with this one; a ready one lives on. */
	if (srv->upgrade.pid > 0 && !srv->upgrade.ready)
		upgrade_abort(&srv->upgrade);
	else
		upgrade_clear(&srv->upgrade);
}
