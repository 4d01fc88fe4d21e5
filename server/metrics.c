/* metrics: the Prometheus endpoint, its HTTP connections, and the figures of several
 * workers summed in worker 0 (see metrics.h).
 *
 * Why not libevent's evhttp: the one Debian 12 ships (libevent 2.1.12) cannot give the
 * endpoint the bounds metrics.h promises. It has no cap on connections
 * (evhttp_set_max_connections exists from 2.2 on), so a flood of scrapers is accepted
 * instead of waiting in the backlog; it closes a connection with shutdown(SHUT_WR) and an
 * immediate close(), so request bytes it did not read turn the close into an RST that can
 * destroy the response in flight (here: FIN, then read to the client's EOF); its timeouts
 * are per read and per write (evhttp_set_timeout), so a client that trickles a byte at a
 * time stays forever, where here both deadlines count from the accept; and it answers
 * HTTP/2.0 with 400 rather than 505. The request head is small (httpreq.c, fuzzed by
 * tests/fuzz/fuzz_httpreq.c), and the rest is a few events. */
#include "metrics.h"
#include "clock.h"
#include "httpreq.h"
#include "kstat.h"
#include "log.h"
#include "portfile.h"
#include "looplag.h"
#include "metrics_text.h"
#include "slots.h"
#include "sock.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

/* Connections accepted per wakeup of the metrics listener. */
#define METRICS_ACCEPT_BATCH 16

enum mclient_phase { MC_READ, MC_WRITE, MC_LINGER };

struct mclient {
	struct metrics *m;
	int fd;
	enum mclient_phase phase;
	int ev_set;	     /* ev has been assigned */
	struct event ev;     /* EV_READ or EV_WRITE, persistent, per phase */
	struct event timer;  /* metrics_request_timeout, then metrics_exchange_timeout */
	int64_t accepted_ms; /* CLOCK_MONOTONIC at accept: both deadlines count from it */
	struct evbuffer *out;
	size_t len;
	char req[METRICS_REQ_MAX];
	TAILQ_ENTRY(mclient) link;
};

struct metrics {
	struct event_base *base;
	const struct server_config *cfg;
	const struct stats *stats; /* the server's own, live */
	struct looplag *lag;
	struct slots *slots; /* with workers: the others' figures ... */
	int worker;	     /* ... and which slot is ours */
	int lfd;
	struct event *ev_accept;
	struct event *ev_resume; /* ends an EMFILE pause */
	TAILQ_HEAD(, mclient) clients;
	int nclients;
	int stopping;	     /* metrics_stop: closing clients must not re-arm the listener */
	uint64_t cap_pauses; /* times the listener stopped at metrics_max_clients */
	struct kstat_files kf;
	struct kstat kbase;
	int have_kbase;
	struct stats *total; /* scratch: the sum over workers */
	/* What the server's watchdog measured at its last census (metrics_publish). */
	struct watchdog_fds fds;
	struct watchdog_close_wait cw;
	int have_cw;
	struct census_counts census;
	int have_census;
	int handed_over; /* a new generation serves the listener: not watched (upgrade) */
};

static void metrics_on_accept(evutil_socket_t fd, short what, void *arg);
static void mclient_on_io(evutil_socket_t fd, short what, void *arg);
static void mclient_on_timeout(evutil_socket_t fd, short what, void *arg);
static void metrics_watch_listener(struct metrics *m);

/* ":PORT" binds 127.0.0.1, not every address: metrics are for the local scraper unless
 * the operator names an address. (The config pass already stores it so: CONF_F_ADDRESS.) */
static const char *metrics_address(const char *value, char *buf, size_t len)
{
	if (value[0] != ':')
		return value;
	snprintf(buf, len, "127.0.0.1%s", value);
	return buf;
}

/* ---- listener ---------------------------------------------------------------------- */

static int metrics_open_listener(const struct server_config *cfg, const char *port_file,
				 int *exit_code)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256], buf[CONF_STR_MAX + 16];
	const char *addr = metrics_address(cfg->metrics_listen, buf, sizeof(buf));
	int fd;

	if (sock_parse_hostport(addr, &ss, &len, err, sizeof(err)) < 0) {
		log_error("metrics_listen %s: %s", addr, err);
		*exit_code = 2;
		return -1;
	}
	/* Scrapers beyond metrics_max_clients wait in this queue (metrics_watch_listener). */
	fd = sock_listen((struct sockaddr *)&ss, len, (int)cfg->metrics_max_clients * 2, 0);
	if (fd < 0) {
		*exit_code = sock_listen_exit_code(errno); /* before logging can change errno */
		log_error("metrics_listen %s: %s", addr, strerror(errno));
		return -1;
	}
	if (port_file != NULL && portfile_write(port_file, sock_local_port(fd)) < 0) {
		log_error("metrics port file %s: %s", port_file, strerror(errno));
		close(fd);
		*exit_code = 1;
		return -1;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		addr = sock_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
	log_info("metrics on http://%s/metrics", addr);
	return fd;
}

/* An adopted listener (an upgrade, systemd) listens already: its port file. */
static void metrics_adopted(int fd, const char *port_file)
{
	if (port_file != NULL && portfile_write(port_file, sock_local_port(fd)) < 0)
		log_error("metrics port file %s: %s", port_file, strerror(errno));
}

/* ---- workers: shared figures ------------------------------------------------------- */

static void kbase_read(struct kstat *k, int *have)
{
	struct kstat_files f;

	*have = 0;
	if (kstat_open(&f) < 0)
		return;
	kstat_read(&f, k);
	kstat_close(&f);
	*have = 1;
}

/* The slots are mapped whatever metrics_listen says: they are how the parent accounts for
 * the connections of a worker that dies (its total counters line). */
int metrics_prefork(const struct server_config *cfg, int nworkers, struct server_params *p,
		    int *exit_code)
{
	p->slots = slots_map(nworkers);
	if (p->slots == NULL) {
		log_error("metrics: mmap for %d workers' figures: %s", nworkers, strerror(errno));
		*exit_code = 1;
		return -1;
	}
	if (cfg->metrics_listen[0] == '\0')
		return 0;
	kbase_read(&p->kbase, &p->have_kbase);
	if (p->metrics_fd < 0) /* not adopted at start (listener_adopt) */
		p->metrics_fd = metrics_open_listener(cfg, p->metrics_port_file, exit_code);
	else
		metrics_adopted(p->metrics_fd, p->metrics_port_file);
	return p->metrics_fd < 0 ? -1 : 0;
}

void metrics_worker_exited(struct slots *slots, int index)
{
	if (slots_retire(slots, index))
		log_warn("worker %d died in the middle of counting an accept or a close: that "
			 "connection is counted in lost_unknown",
			 index);
}

/* The sum over the workers in the parent, which has no figures of its own. */
void metrics_log_total(struct slots *slots)
{
	struct stats *total;
	struct watchdog_fds fds = {0};
	struct watchdog_close_wait cw = {0};
	char buf[2048];
	int unread;

	if (slots == NULL || (total = calloc(1, sizeof(*total))) == NULL)
		return;
	slots_sum(slots, -1, total, &fds, &cw, &unread);
	total->fd_unaccounted = -1; /* per worker (their counters lines) */
	log_always("total counters %s", stats_json(total, buf, sizeof(buf)));
	if (unread > 0)
		log_warn("metrics: %d workers' figures kept changing: left out of the total",
			 unread);
	free(total);
}

/* Adds the other workers' figures (and every slot's retired counters) to this worker's
 * own. Returns how many workers are summed. */
static uint64_t metrics_sum_workers(const struct metrics *m, struct stats *total,
				    struct watchdog_fds *fds, struct watchdog_close_wait *cw)
{
	int unread, n = slots_sum(m->slots, m->worker, total, fds, cw, &unread);

	if (unread > 0)
		log_warn("metrics: %d workers' figures kept changing: left out", unread);
	return 1 + (uint64_t)n;
}

/* ---- one scrape -------------------------------------------------------------------- */

static int metrics_render_page(struct metrics *m, struct evbuffer *body)
{
	struct watchdog_fds fds = m->fds;
	struct watchdog_close_wait cw = m->cw;
	struct metrics_view v = {0};
	struct kstat now;
	int64_t start = clock_mono_us();
	int rc;

	*m->total = *m->stats;
	m->total->log_dropped = log_dropped_lines(); /* this process's own, read now */
	v.workers = m->slots != NULL ? metrics_sum_workers(m, m->total, &fds, &cw) : 1;
	/* The generation's facts are this process's own, never a dead worker's merged. */
	m->total->generation = m->stats->generation;
	m->total->start_time_s = m->stats->start_time_s;
	m->total->reload_ok = m->stats->reload_ok;
	m->total->reload_time_s = m->stats->reload_time_s;
	v.stats = m->total;
	v.fds = &fds;
	v.cw = m->have_cw ? &cw : NULL;
	v.census = m->have_census ? &m->census : NULL;
	v.metrics_cap_pauses = m->cap_pauses;
	if (m->have_kbase) {
		kstat_read(&m->kf, &now);
		v.kbase = &m->kbase;
		v.know = &now;
	}
	rc = metrics_text_render(&v, body);
	looplag_note(m->lag, "/metrics render", start);
	return rc;
}

/* ---- HTTP responses ---------------------------------------------------------------- */

static const char *status_text(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

/* Status line, headers and (unless head_only) the body, which is emptied. */
static int mclient_respond(struct mclient *c, int code, const char *ctype, struct evbuffer *body,
			   int head_only)
{
	size_t len = evbuffer_get_length(body);

	if (evbuffer_add_printf(c->out,
				"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
				"%sConnection: close\r\n\r\n",
				code, status_text(code), ctype, len,
				code == 405 ? "Allow: GET, HEAD\r\n" : "") < 0)
		return -1;
	if (head_only)
		return evbuffer_drain(body, len);
	return evbuffer_add_buffer(c->out, body);
}

static int mclient_error(struct mclient *c, int code, const char *text)
{
	struct evbuffer *body = evbuffer_new();
	int rc = -1;

	if (body != NULL && evbuffer_add_printf(body, "%s\n", text) >= 0)
		rc = mclient_respond(c, code, "text/plain; charset=utf-8", body, 0);
	if (body != NULL)
		evbuffer_free(body);
	return rc;
}

static int mclient_answer(struct mclient *c, const struct httpreq *r)
{
	int head = httpreq_method_is(r, "HEAD");
	struct evbuffer *body;
	int rc = -1;

	if (r->major != 1)
		return mclient_error(c, 505, "HTTP/1.0 or HTTP/1.1 only");
	if (!head && !httpreq_method_is(r, "GET"))
		return mclient_error(c, 405, "GET or HEAD only");
	if (!httpreq_path_is(r, "/metrics"))
		return mclient_error(c, 404, "not found: try /metrics");
	body = evbuffer_new();
	if (body == NULL)
		return -1;
	if (metrics_render_page(c->m, body) == 0)
		rc =
		    mclient_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, head);
	else
		rc = mclient_error(c, 500, "out of memory");
	evbuffer_free(body);
	return rc;
}

/* ---- one metrics connection: read the request, write the answer, linger, close ----- */

static void mclient_free(struct mclient *c)
{
	struct metrics *m = c->m;

	if (c->ev_set)
		event_del(&c->ev);
	evtimer_del(&c->timer);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (close(c->fd) < 0)
		log_debug("metrics: close fd %d: %s", c->fd, strerror(errno));
	TAILQ_REMOVE(&m->clients, c, link);
	m->nclients--;
	free(c);
	if (!m->stopping)
		metrics_watch_listener(m); /* a slot is free: the next scraper waits no more */
}

static int mclient_set_phase(struct mclient *c, enum mclient_phase phase)
{
	short what = phase == MC_WRITE ? EV_WRITE : EV_READ;

	if (c->ev_set)
		event_del(&c->ev);
	c->phase = phase;
	c->len = 0;
	c->ev_set = 1;
	event_assign(&c->ev, c->m->base, c->fd, what | EV_PERSIST, mclient_on_io, c);
	return event_add(&c->ev, NULL);
}

/* The connection's deadline: `ms` after its accept (the request head's, then the whole
 * exchange's, which was running since the accept too). 0, or -1 when it cannot be armed. */
static int mclient_arm_timer(struct mclient *c, int64_t ms)
{
	int64_t left = c->accepted_ms + ms - clock_mono_ms();
	struct timeval tv = clock_ms_to_tv(left > 0 ? left : 0);

	return evtimer_add(&c->timer, &tv);
}

/* Sends what the kernel takes; once all is sent, our FIN, then wait for the client's EOF
 * (its unread bytes would otherwise make close() send an RST that can destroy the
 * response in flight). Returns -1 when the connection is to be closed now. */
static int mclient_flush(struct mclient *c)
{
	if (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, c->fd) < 0 &&
	    !sock_errno_transient(errno))
		return -1;
	if (evbuffer_get_length(c->out) > 0)
		return c->phase == MC_WRITE ? 0 : mclient_set_phase(c, MC_WRITE);
	if (shutdown(c->fd, SHUT_WR) < 0)
		return -1;
	return mclient_set_phase(c, MC_LINGER);
}

/* Reads more of the request head; answers once it is complete or known to be garbage. */
static int mclient_read_request(struct mclient *c)
{
	struct httpreq r;
	ssize_t n = recv(c->fd, c->req + c->len, sizeof(c->req) - c->len, 0);
	enum httpreq_status st;
	int rc;

	if (n < 0)
		return sock_errno_transient(errno) ? 0 : -1;
	if (n == 0)
		return -1; /* EOF before a whole request: nothing to answer */
	c->len += (size_t)n;
	st = httpreq_parse(c->req, c->len, &r);
	if (st == HTTPREQ_INCOMPLETE && c->len < sizeof(c->req))
		return 0;
	if (mclient_arm_timer(c, c->m->cfg->metrics_exchange_timeout) < 0)
		return -1;
	if (st == HTTPREQ_DONE)
		rc = mclient_answer(c, &r);
	else if (st == HTTPREQ_BAD)
		rc = mclient_error(c, 400, "bad request");
	else
		rc = mclient_error(c, 400, "request head too large");
	return rc < 0 ? -1 : mclient_flush(c);
}

/* After our FIN: discard what the client still sends, up to its EOF, within bounds. */
static int mclient_linger(struct mclient *c)
{
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

	if (n < 0)
		return sock_errno_transient(errno) ? 0 : -1;
	if (n == 0)
		return -1;
	c->len += (size_t)n;
	return c->len > 16 * sizeof(c->req) ? -1 : 0;
}

static void mclient_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct mclient *c = arg;
	int rc;

	(void)fd;
	(void)what;
	if (c->phase == MC_READ)
		rc = mclient_read_request(c);
	else if (c->phase == MC_WRITE)
		rc = mclient_flush(c);
	else
		rc = mclient_linger(c);
	if (rc < 0)
		mclient_free(c);
}

static void mclient_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mclient *c = arg;

	(void)fd;
	(void)what;
	log_debug("metrics: fd %d: %s within %lldms of its accept: closed", c->fd,
		  c->phase == MC_READ ? "no complete request head" : "no complete exchange",
		  (long long)(clock_mono_ms() - c->accepted_ms));
	mclient_free(c);
}

static void mclient_new(struct metrics *m, int fd)
{
	struct mclient *c = calloc(1, sizeof(*c));
	const struct server_config *cfg = m->cfg;
	int64_t head = cfg->metrics_request_timeout < cfg->metrics_exchange_timeout
			   ? cfg->metrics_request_timeout
			   : cfg->metrics_exchange_timeout;

	if (c == NULL || (c->out = evbuffer_new()) == NULL) {
		log_warn("metrics: out of memory for a connection");
		free(c);
		close(fd);
		return;
	}
	c->m = m;
	c->fd = fd;
	c->accepted_ms = clock_mono_ms();
	TAILQ_INSERT_TAIL(&m->clients, c, link);
	m->nclients++;
	evtimer_assign(&c->timer, m->base, mclient_on_timeout, c);
	if (mclient_arm_timer(c, head) < 0 || mclient_set_phase(c, MC_READ) < 0) {
		log_warn("metrics: cannot register a connection's events");
		mclient_free(c);
	}
}

/* ---- accept ------------------------------------------------------------------------ */

/* Watches the listener while a slot is free and no EMFILE pause runs, and stops watching
 * it at metrics_max_clients: connections beyond the cap wait in the kernel's accept queue
 * (an unwatched listener costs the loop nothing) until a slot frees, instead of being
 * accepted and closed. Called after every change of either condition. */
static void metrics_watch_listener(struct metrics *m)
{
	int want = m->nclients < m->cfg->metrics_max_clients &&
		   !evtimer_pending(m->ev_resume, NULL) && !m->handed_over;
	int on = event_pending(m->ev_accept, EV_READ, NULL);

	if (want && !on && event_add(m->ev_accept, NULL) < 0) {
		struct timeval tv = clock_ms_to_tv(m->cfg->accept_pause);

		log_warn("metrics: re-arming the listener failed: trying again in %lldms",
			 (long long)m->cfg->accept_pause);
		evtimer_add(m->ev_resume, &tv);
	} else if (!want && on) {
		if (m->nclients >= m->cfg->metrics_max_clients)
			m->cap_pauses++;
		event_del(m->ev_accept);
	}
}

/* Out of fds: the metrics listener waits accept_pause (scrapers wait in its queue) rather
 * than spin on a listener that stays readable. */
static void metrics_pause(struct metrics *m, int err)
{
	struct timeval tv = clock_ms_to_tv(m->cfg->accept_pause);

	log_warn("metrics: accept: %s: pausing the metrics listener for %lldms", strerror(err),
		 (long long)m->cfg->accept_pause);
	event_del(m->ev_accept);
	if (evtimer_add(m->ev_resume, &tv) < 0) {
		log_warn("metrics: arming the listener's resume timer failed: it resumes now");
		metrics_watch_listener(m);
	}
}

static void metrics_on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	metrics_watch_listener(arg);
}

static void metrics_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < METRICS_ACCEPT_BATCH; i++) {
		int cfd;

		if (m->nclients >= m->cfg->metrics_max_clients) {
			log_debug("metrics: %d open: the listener waits for one to close",
				  m->nclients);
			break;
		}
		cfd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (sock_accept_retry(errno))
				continue;
			if (sock_accept_exhausted(errno))
				metrics_pause(m, errno);
			else if (!sock_errno_transient(errno))
				log_warn("metrics: accept: %s", strerror(errno));
			return;
		}
		mclient_new(m, cfd);
	}
	metrics_watch_listener(m);
}

/* ---- start and stop ---------------------------------------------------------------- */

/* Without workers the process opens its listener; worker 0 takes over the parent's;
 * other workers close their inherited copy and serve nothing. Returns the fd, -2 when this
 * process does not serve, -1 on error. */
static int metrics_take_listener(const struct server_config *cfg, struct server_params *p,
				 int *exit_code)
{
	int fd = p->metrics_fd;

	if (p->slots == NULL && fd >= 0) { /* adopted at start (listener_adopt) */
		p->metrics_fd = -1;
		metrics_adopted(fd, p->metrics_port_file);
		return fd;
	}
	if (p->slots == NULL)
		return metrics_open_listener(cfg, p->metrics_port_file, exit_code);
	p->metrics_fd = -1; /* taken over, or closed */
	if (p->worker == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -2;
}

static int metrics_setup(struct metrics *m, const struct server_params *p)
{
	TAILQ_INIT(&m->clients);
	m->kf.netstat_fd = m->kf.sockstat_fd = -1;
	m->total = malloc(sizeof(*m->total));
	m->ev_accept = event_new(m->base, m->lfd, EV_READ | EV_PERSIST, metrics_on_accept, m);
	m->ev_resume = evtimer_new(m->base, metrics_on_resume, m);
	if (m->total == NULL || m->ev_accept == NULL || m->ev_resume == NULL ||
	    event_add(m->ev_accept, NULL) < 0) {
		log_error("metrics: cannot register the listener");
		return -1;
	}
	if (kstat_open(&m->kf) == 0) {
		if (p->slots != NULL && p->have_kbase) {
			m->kbase = p->kbase; /* from the parent's start */
			m->have_kbase = 1;
		} else if (p->slots == NULL) {
			kstat_read(&m->kf, &m->kbase);
			m->have_kbase = 1;
		}
	}
	return 0;
}

int metrics_start(struct metrics **out, const struct metrics_env *env, struct server_params *p,
		  int *exit_code)
{
	struct metrics *m;
	int fd;

	*out = NULL;
	if (env->cfg->metrics_listen[0] == '\0')
		return 0;
	fd = metrics_take_listener(env->cfg, p, exit_code);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		log_error("metrics: out of memory");
		close(fd);
		return -1;
	}
	m->base = env->base;
	m->cfg = env->cfg;
	m->stats = env->stats;
	m->lag = env->lag;
	m->slots = p->slots;
	m->worker = p->worker;
	m->lfd = fd;
	*out = m;
	if (metrics_setup(m, p) < 0) {
		*exit_code = 1;
		return -1;
	}
	return 0;
}

void metrics_stop(struct metrics *m)
{
	struct mclient *c;

	if (m == NULL)
		return;
	m->stopping = 1;
	while ((c = TAILQ_FIRST(&m->clients)) != NULL)
		mclient_free(c);
	if (m->ev_accept != NULL)
		event_free(m->ev_accept);
	if (m->ev_resume != NULL)
		event_free(m->ev_resume);
	kstat_close(&m->kf);
	if (m->lfd >= 0)
		close(m->lfd);
	free(m->total);
	free(m);
}

void metrics_publish(struct metrics *m, const struct watchdog_fds *fds,
		     const struct watchdog_close_wait *cw, const struct census_counts *census)
{
	if (m == NULL)
		return;
	memset(&m->fds, 0, sizeof(m->fds));
	if (fds != NULL)
		m->fds = *fds;
	m->have_cw = cw != NULL;
	if (cw != NULL)
		m->cw = *cw;
	m->have_census = census != NULL;
	if (census != NULL)
		m->census = *census;
}

void metrics_mark_fds(const struct metrics *m, unsigned char *mark, size_t n)
{
	const struct mclient *c;

	if (m == NULL)
		return;
	if (m->lfd >= 0 && (size_t)m->lfd < n)
		mark[m->lfd] = 1;
	if (m->kf.netstat_fd >= 0 && (size_t)m->kf.netstat_fd < n)
		mark[m->kf.netstat_fd] = 1;
	if (m->kf.sockstat_fd >= 0 && (size_t)m->kf.sockstat_fd < n)
		mark[m->kf.sockstat_fd] = 1;
	TAILQ_FOREACH(c, &m->clients, link)
	{
		if ((size_t)c->fd < n)
			mark[c->fd] = 1;
	}
}

int metrics_listener_fd(const struct metrics *m)
{
	return m != NULL ? m->lfd : -1;
}

void metrics_handover(struct metrics *m, int on)
{
	if (m == NULL)
		return;
	m->handed_over = on;
	metrics_watch_listener(m);
}
