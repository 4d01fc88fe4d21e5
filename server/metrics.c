/* metrics: the Prometheus endpoint, its HTTP connections, and the figures of several
 * workers summed in worker 0 (see metrics.h). */
#include "metrics.h"
#include "clock.h"
#include "httpreq.h"
#include "kstat.h"
#include "log.h"
#include "metrics_text.h"
#include "server.h"
#include "sock.h"
#include "watchdog.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <unistd.h>

/* Connections accepted per wakeup of the metrics listener. */
#define METRICS_ACCEPT_BATCH 16
/* A reader gives up on a slot a writer keeps changing (or died changing). */
#define METRICS_SEQ_TRIES 1000

enum mclient_phase { MC_READ, MC_WRITE, MC_LINGER };

struct mclient {
	struct metrics *m;
	int fd;
	enum mclient_phase phase;
	int ev_set;	    /* ev has been assigned */
	struct event ev;    /* EV_READ or EV_WRITE, persistent, per phase */
	struct event timer; /* METRICS_TIMEOUT_MS from accept: the whole exchange */
	struct evbuffer *out;
	size_t len;
	char req[METRICS_REQ_MAX];
	TAILQ_ENTRY(mclient) link;
};

struct metrics {
	struct server *srv;
	int lfd;
	struct event *ev_accept;
	struct event *ev_resume; /* ends an EMFILE pause */
	TAILQ_HEAD(, mclient) clients;
	int nclients;
	uint64_t rejected;
	struct kstat_files kf;
	struct kstat kbase;
	int have_kbase;
	struct stats *total; /* scratch: the sum over workers */
};

/* One worker's published figures. seq is odd while the worker writes (a seqlock: readers
 * retry, and never block the writer). */
struct metrics_slot {
	atomic_uint seq;
	int live;
	struct stats stats;   /* its latest figures */
	struct stats retired; /* counters of the earlier workers in this slot */
	struct watchdog_fds fds;
	struct watchdog_close_wait cw;
};

struct metrics_shared {
	int n;
	struct kstat kbase;
	int have_kbase;
	struct metrics_slot slot[];
};

/* Process-wide: set by main.c and workers.c before server_init. */
static struct {
	const char *port_file;
	int worker;		       /* this worker's index; 0 without workers */
	int prefork_fd;		       /* the listener the parent opened, or -1 */
	struct metrics_shared *shared; /* NULL without workers */
	size_t shared_len;
} g = {NULL, 0, -1, NULL, 0};

static void metrics_on_accept(evutil_socket_t fd, short what, void *arg);
static void mclient_on_io(evutil_socket_t fd, short what, void *arg);
static void mclient_on_timeout(evutil_socket_t fd, short what, void *arg);

void metrics_set_port_file(const char *path)
{
	g.port_file = path;
}

void metrics_set_worker(int index)
{
	g.worker = index;
}

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

static int metrics_write_port_file(int port)
{
	return g.port_file != NULL ? server_write_port_file(g.port_file, port) : 0;
}

static int metrics_open_listener(const struct server_config *cfg, int *exit_code)
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
	fd = sock_listen((struct sockaddr *)&ss, len, METRICS_MAX_CLIENTS * 2, 0);
	if (fd < 0) {
		*exit_code = server_listen_exit_code(errno); /* before logging can change errno */
		log_error("metrics_listen %s: %s", addr, strerror(errno));
		return -1;
	}
	if (metrics_write_port_file(sock_local_port(fd)) < 0) {
		log_error("metrics port file %s: %s", g.port_file, strerror(errno));
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

int metrics_prefork(const struct server_config *cfg, int nworkers, int *exit_code)
{
	size_t len = sizeof(struct metrics_shared) + (size_t)nworkers * sizeof(struct metrics_slot);
	void *p;

	if (cfg->metrics_listen[0] == '\0')
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("metrics: mmap of %zu bytes for the workers' figures: %s", len,
			  strerror(errno));
		*exit_code = 1;
		return -1;
	}
	g.shared = p; /* zero-filled: every slot empty, every hist empty */
	g.shared_len = len;
	g.shared->n = nworkers;
	kbase_read(&g.shared->kbase, &g.shared->have_kbase);
	g.prefork_fd = metrics_open_listener(cfg, exit_code);
	return g.prefork_fd < 0 ? -1 : 0;
}

/* Adds the counters of b into a (not the gauges: open, fd_unaccounted). */
static void stats_add_counters(struct stats *a, const struct stats *b)
{
	a->accepted += b->accepted;
	for (int r = 0; r < CLOSE_NREASONS; r++)
		a->closed[r] += b->closed[r];
	a->bytes_in += b->bytes_in;
	a->bytes_out += b->bytes_out;
	a->emfile_pauses += b->emfile_pauses;
	a->shed += b->shed;
	a->eof_ignored += b->eof_ignored;
	hist_merge(&a->fin_to_close_us, &b->fin_to_close_us);
	a->log_dropped += b->log_dropped;
}

static void slot_write_begin(struct metrics_slot *s)
{
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void slot_write_end(struct metrics_slot *s)
{
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

void metrics_worker_exited(int index)
{
	struct metrics_slot *s;

	if (g.shared == NULL || index < 0 || index >= g.shared->n)
		return;
	s = &g.shared->slot[index];
	/* The worker is dead, so nobody writes: an odd seq means it died while publishing and
	 * its copy may be torn; its counters since the previous census are lost either way. */
	if (atomic_load_explicit(&s->seq, memory_order_acquire) & 1) {
		log_warn("worker %d died while publishing its metrics: its counters are dropped",
			 index);
		atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
		return;
	}
	slot_write_begin(s);
	if (s->live)
		stats_add_counters(&s->retired, &s->stats);
	memset(&s->stats, 0, sizeof(s->stats));
	s->live = 0;
	slot_write_end(s);
}

void metrics_publish(struct server *srv)
{
	struct metrics_slot *s;
	const struct watchdog_fds *fds = watchdog_fds(srv);
	const struct watchdog_close_wait *cw = watchdog_close_wait(srv);

	if (g.shared == NULL || g.worker < 0 || g.worker >= g.shared->n)
		return;
	s = &g.shared->slot[g.worker];
	slot_write_begin(s);
	s->stats = srv->stats;
	s->stats.log_dropped = log_dropped_lines();
	memset(&s->fds, 0, sizeof(s->fds));
	memset(&s->cw, 0, sizeof(s->cw));
	if (fds != NULL)
		s->fds = *fds;
	if (cw != NULL)
		s->cw = *cw;
	s->live = 1;
	slot_write_end(s);
}

/* A consistent copy of another worker's slot; -1 when it kept changing. */
static int slot_read(struct metrics_slot *s, struct metrics_slot *copy)
{
	for (int t = 0; t < METRICS_SEQ_TRIES; t++) {
		unsigned a = atomic_load_explicit(&s->seq, memory_order_acquire);

		if (a & 1)
			continue;
		copy->live = s->live;
		copy->stats = s->stats;
		copy->retired = s->retired;
		copy->fds = s->fds;
		copy->cw = s->cw;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == a)
			return 0;
	}
	return -1;
}

static void fds_add(struct watchdog_fds *a, const struct watchdog_fds *b)
{
	a->valid = a->valid && b->valid;
	a->open += b->open;
	a->conns += b->conns;
	a->own += b->own;
	a->unaccounted += b->unaccounted;
}

static void cw_add(struct watchdog_close_wait *a, const struct watchdog_close_wait *b)
{
	a->flushing += b->flushing;
	a->overdue += b->overdue;
	a->past_fin += b->past_fin;
	a->warnings += b->warnings;
	if (b->oldest_ms > a->oldest_ms)
		a->oldest_ms = b->oldest_ms;
}

/* Adds the other workers' published figures (and every slot's retired counters) to this
 * worker's own. Returns how many workers are summed. */
static uint64_t metrics_sum_workers(struct stats *total, struct watchdog_fds *fds,
				    struct watchdog_close_wait *cw)
{
	struct metrics_slot *copy = malloc(sizeof(*copy));
	uint64_t n = 1;

	if (copy == NULL)
		return n;
	for (int i = 0; i < g.shared->n; i++) {
		if (slot_read(&g.shared->slot[i], copy) < 0) {
			log_warn("metrics: worker %d's figures kept changing: left out", i);
			continue;
		}
		stats_add_counters(total, &copy->retired);
		if (i == g.worker || !copy->live)
			continue;
		stats_add_counters(total, &copy->stats);
		total->open += copy->stats.open;
		total->fd_unaccounted += copy->stats.fd_unaccounted;
		fds_add(fds, &copy->fds);
		cw_add(cw, &copy->cw);
		n++;
	}
	free(copy);
	return n;
}

/* ---- one scrape -------------------------------------------------------------------- */

static int metrics_render_page(struct metrics *m, struct evbuffer *body)
{
	struct server *srv = m->srv;
	struct watchdog_fds fds = {0};
	struct watchdog_close_wait cw = {0};
	struct metrics_view v = {0};
	struct kstat now;

	*m->total = srv->stats;
	m->total->log_dropped = log_dropped_lines();
	if (watchdog_fds(srv) != NULL)
		fds = *watchdog_fds(srv);
	if (watchdog_close_wait(srv) != NULL)
		cw = *watchdog_close_wait(srv);
	v.workers = g.shared != NULL ? metrics_sum_workers(m->total, &fds, &cw) : 1;
	v.stats = m->total;
	v.fds = &fds;
	v.cw = watchdog_close_wait(srv) != NULL ? &cw : NULL;
	v.census = watchdog_census(srv);
	v.metrics_rejected = m->rejected;
	if (m->have_kbase) {
		kstat_read(&m->kf, &now);
		v.kbase = &m->kbase;
		v.know = &now;
	}
	return metrics_text_render(&v, body);
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
}

static int mclient_set_phase(struct mclient *c, enum mclient_phase phase)
{
	short what = phase == MC_WRITE ? EV_WRITE : EV_READ;

	if (c->ev_set)
		event_del(&c->ev);
	c->phase = phase;
	c->len = 0;
	c->ev_set = 1;
	event_assign(&c->ev, c->m->srv->base, c->fd, what | EV_PERSIST, mclient_on_io, c);
	return event_add(&c->ev, NULL);
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
	log_debug("metrics: fd %d: no complete exchange within %dms: closed", c->fd,
		  METRICS_TIMEOUT_MS);
	mclient_free(c);
}

static void mclient_new(struct metrics *m, int fd)
{
	struct mclient *c = calloc(1, sizeof(*c));
	struct timeval tv = clock_ms_to_tv(METRICS_TIMEOUT_MS);

	if (c == NULL || (c->out = evbuffer_new()) == NULL) {
		log_warn("metrics: out of memory for a connection");
		free(c);
		close(fd);
		return;
	}
	c->m = m;
	c->fd = fd;
	TAILQ_INSERT_TAIL(&m->clients, c, link);
	m->nclients++;
	evtimer_assign(&c->timer, m->srv->base, mclient_on_timeout, c);
	if (evtimer_add(&c->timer, &tv) < 0 || mclient_set_phase(c, MC_READ) < 0) {
		log_warn("metrics: cannot register a connection's events");
		mclient_free(c);
	}
}

/* ---- accept ------------------------------------------------------------------------ */

/* Out of fds: the metrics listener waits accept_pause (scrapers wait in its queue) rather
 * than spin on a listener that stays readable. */
static void metrics_pause(struct metrics *m, int err)
{
	struct timeval tv = clock_ms_to_tv(m->srv->cfg->accept_pause);

	log_warn("metrics: accept: %s: pausing the metrics listener for %lldms", strerror(err),
		 (long long)m->srv->cfg->accept_pause);
	event_del(m->ev_accept);
	evtimer_add(m->ev_resume, &tv);
}

static void metrics_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;

	(void)fd;
	if ((what & EV_TIMEOUT) && !event_pending(m->ev_accept, EV_READ, NULL))
		event_add(m->ev_accept, NULL);
	for (int i = 0; i < METRICS_ACCEPT_BATCH; i++) {
		int cfd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (sock_accept_retry(errno))
				continue;
			if (sock_accept_exhausted(errno))
				metrics_pause(m, errno);
			else if (!sock_errno_transient(errno))
				log_warn("metrics: accept: %s", strerror(errno));
			return;
		}
		if (m->nclients >= METRICS_MAX_CLIENTS) {
			m->rejected++;
			close(cfd);
			log_warn("metrics: %d connections already open: one more closed",
				 METRICS_MAX_CLIENTS);
			continue;
		}
		mclient_new(m, cfd);
	}
}

/* ---- start and stop ---------------------------------------------------------------- */

int metrics_serving(const struct server *srv)
{
	return srv->metrics != NULL;
}

/* Without workers the process opens its listener; worker 0 takes over the parent's;
 * other workers close their inherited copy and serve nothing. Returns the fd, -2 when this
 * process does not serve, -1 on error. */
static int metrics_take_listener(const struct server_config *cfg, int *exit_code)
{
	int fd = g.prefork_fd;

	if (g.shared == NULL)
		return metrics_open_listener(cfg, exit_code);
	g.prefork_fd = -1;
	if (g.worker == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -2;
}

static int metrics_setup(struct metrics *m)
{
	struct server *srv = m->srv;

	TAILQ_INIT(&m->clients);
	m->kf.netstat_fd = m->kf.sockstat_fd = -1;
	m->total = malloc(sizeof(*m->total));
	m->ev_accept = event_new(srv->base, m->lfd, EV_READ | EV_PERSIST, metrics_on_accept, m);
	m->ev_resume = evtimer_new(srv->base, metrics_on_accept, m);
	if (m->total == NULL || m->ev_accept == NULL || m->ev_resume == NULL ||
	    event_add(m->ev_accept, NULL) < 0) {
		log_error("metrics: cannot register the listener");
		return -1;
	}
	if (kstat_open(&m->kf) == 0) {
		if (g.shared != NULL && g.shared->have_kbase) {
			m->kbase = g.shared->kbase; /* from the parent's start */
			m->have_kbase = 1;
		} else if (g.shared == NULL) {
			kstat_read(&m->kf, &m->kbase);
			m->have_kbase = 1;
		}
	}
	return 0;
}

int metrics_start(struct server *srv, int *exit_code)
{
	struct metrics *m;
	int fd;

	if (srv->cfg->metrics_listen[0] == '\0')
		return 0;
	fd = metrics_take_listener(srv->cfg, exit_code);
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
	m->srv = srv;
	m->lfd = fd;
	srv->metrics = m;
	if (metrics_setup(m) < 0) {
		*exit_code = 1;
		return -1;
	}
	return 0;
}

void metrics_stop(struct server *srv)
{
	struct metrics *m = srv->metrics;
	struct mclient *c;

	if (m == NULL)
		return;
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
	srv->metrics = NULL;
}

void metrics_mark_fds(const struct server *srv, unsigned char *mark, size_t n)
{
	const struct metrics *m = srv->metrics;
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
