/* watchdog: the census, the CLOSE_WAIT watchdog and the fd accounting of one server
 * process (see watchdog.h). Everything runs in the server's event loop, once per
 * census_interval (server.c's tick); nothing here opens an fd after watchdog_start, so it
 * keeps working when the process is out of fds. */
#include "watchdog.h"
#include "clock.h"
#include "cwboard.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The CLOSE_WAIT sockets of a census, each followed across censuses by its cookie (in the
 * form the board shares them). */
struct cw_list {
	struct cwboard_rec *v;
	size_t n, cap;
	int failed; /* out of memory while collecting */
};

/* A connection found by the inode of its fd. */
struct conn_ino {
	uint32_t inode;
	struct watchdog_conn c;
};

/* Why an old CLOSE_WAIT socket is overdue (the breakdown of a warning). */
enum cw_why { CW_EOF_IGNORED, CW_FIN_UNSEEN, CW_PAST_FIN, CW_NOT_ACCEPTED, CW_OTHER, CW_NWHY };

static const char *const why_names[CW_NWHY] = {"eof_ignored", "fin_unseen", "past_fin_timeout",
					       "not_accepted", "other"};

/* The census taker's thread (with workers, in worker 0): a census of 2,000,000 sockets
 * takes seconds of CPU, more on a busy machine, and taken in the event loop it delayed
 * the echo of worker 0's own connections past a client's deadlines (bench-scale at
 * 1,000,000: about 11,000 failed at once). The loop asks (want), the thread takes the
 * census into list and counts and says done; the loop takes the result at a later tick
 * and does the rest (ages, board, verdicts, pacing) itself. Everything here but tid is
 * under mu; list and counts belong to the thread from want until done. */
#define CENSUS_THREAD "td-census" /* its name (comm) */

struct census_job {
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int want, busy, done, quit;
	int rc, err;	  /* the census's result and errno */
	int64_t start_us; /* CLOCK_MONOTONIC when it was asked for */
	int64_t cpu_us;	  /* the thread's CPU time for it */
	struct census_counts counts;
	struct cw_list list;
};

struct watchdog {
	struct watchdog_owner o;
	struct census_job *job; /* NULL: the census runs in the loop */
	struct census_sock *cs;
	struct census_counts census;
	int have_census;
	int census_failing; /* reported once until it works again */
	struct cw_list prev, cur;
	struct conn_ino *index; /* built per tick, only when an old socket needs its conn */
	size_t nindex, capindex;
	int index_built;
	struct watchdog_close_wait cw;
	int procfd; /* /proc/self/fd, opened once */
	int *own;   /* fds open at start that are the server's own, sorted */
	size_t nown;
	int own_listed;	     /* a listing counted the server's fixed own fds ... */
	size_t own_fixed;    /* ... as this many (fds_fast) */
	unsigned char *live; /* scratch for count_live_own: one byte per possible fd */
	size_t nlive;
	int *scan; /* fd numbers of the last scan */
	size_t nscan, capscan;
	struct watchdog_fds fds;
	uint64_t fds_warned;
	int fds_failing;
	uint64_t censuses;     /* censuses taken */
	int64_t census_due_us; /* CLOCK_MONOTONIC before which no census is taken */
	int census_stretched;  /* the period was stretched once (logged then) */
	int board_failing;     /* a board read failed; reported once until one works */
	int board_truncated;   /* a post did not fit; reported once */
	uint64_t board_gen;    /* the post last read (0: none yet) */
};

/* ---- fd accounting ----------------------------------------------------------------- */

static int scan_push(struct watchdog *w, int fd)
{
	if (w->nscan == w->capscan) {
		size_t cap = w->capscan ? w->capscan * 2 : 256;
		int *v = realloc(w->scan, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		w->scan = v;
		w->capscan = cap;
	}
	w->scan[w->nscan++] = fd;
	return 0;
}

/* The numbers in /proc/self/fd, read through the directory fd opened at start: rewinding
 * it makes procfs list the table afresh, and no new fd is needed. 0, or -1 with errno. */
static int scan_fds(struct watchdog *w)
{
	char buf[8192];
	ssize_t n;

	w->nscan = 0;
	if (lseek(w->procfd, 0, SEEK_SET) < 0)
		return -1;
	while ((n = getdents64(w->procfd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			char *end;
			long fd = strtol(d->d_name, &end, 10);

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9' || *end != '\0')
				continue;
			if (scan_push(w, (int)fd) < 0)
				return -1;
		}
	}
	return n < 0 ? -1 : 0;
}

static int scan_max(const struct watchdog *w)
{
	int max = -1;

	for (size_t i = 0; i < w->nscan; i++)
		if (w->scan[i] > max)
			max = w->scan[i];
	return max;
}

struct marks {
	unsigned char *mark;
	size_t n;
};

static void mark_conn(void *arg, const struct watchdog_conn *c)
{
	struct marks *m = arg;

	if (c->fd >= 0 && (size_t)c->fd < m->n)
		m->mark[c->fd] = 2;
}

/* mark[fd]: 1 = the server's own fd, 2 = a connection. */
static void mark_known(const struct watchdog *w, unsigned char *mark, size_t n)
{
	struct marks m = {mark, n};

	for (size_t i = 0; i < w->nown; i++)
		if ((size_t)w->own[i] < n)
			mark[w->own[i]] = 1;
	w->o.mark_own(w->o.arg, mark, n);
	w->o.each_conn(w->o.arg, mark_conn, &m);
}

static void warn_unaccounted(struct watchdog *w, int fd)
{
	char path[32], target[256] = "?";
	ssize_t n;

	snprintf(path, sizeof(path), "%d", fd);
	n = readlinkat(w->procfd, path, target, sizeof(target) - 1);
	if (n >= 0)
		target[n] = '\0';
	log_warn("fd accounting: %llu open fds are neither connections nor the server's own "
		 "(leaked?), e.g. fd %d -> %s",
		 (unsigned long long)w->fds.unaccounted, fd, target);
}

/* Classifies the scanned fds; returns one unaccounted fd (for the warning), or -1. */
static int count_fds(struct watchdog *w, const unsigned char *mark)
{
	int example = -1;

	memset(&w->fds, 0, sizeof(w->fds));
	w->fds.valid = 1;
	w->fds.open = w->nscan;
	for (size_t i = 0; i < w->nscan; i++) {
		int fd = w->scan[i];
		if (mark[fd] == 2)
			w->fds.conns++;
		else if (mark[fd] == 1)
			w->fds.own++;
		else {
			w->fds.unaccounted++;
			example = fd;
		}
	}
	return example;
}

static void fds_failed(struct watchdog *w, const char *what)
{
	if (!w->fds_failing)
		log_warn("fd accounting: %s: %s", what, strerror(errno));
	w->fds_failing = 1;
	w->fds.valid = 0;
}

/* How many of the fds the server opens and closes while it runs (listener, reserve fd,
 * the metrics endpoint's) are open now; one below w->nlive is not seen (the cheap check
 * then fails and the listing decides). */
static size_t count_live_own(struct watchdog *w)
{
	size_t c = 0;

	memset(w->live, 0, w->nlive);
	w->o.mark_own(w->o.arg, w->live, w->nlive);
	for (size_t i = 0; i < w->nlive; i++)
		c += w->live[i] != 0;
	return c;
}

/* The cheap check: since Linux 6.2 stat() of /proc/PID/fd gives the number of open fds as
 * its size (a count of the fd table's bitmap, no directory listing). When it equals the
 * connections, plus the server's fixed own fds as the last listing found them, plus its
 * live-checked ones now (metrics clients come and go), nothing is unaccounted and the
 * listing is skipped: at 17,000 connections per worker listing /proc/self/fd each tick
 * was a fifth of an idle server's CPU (perf: proc_readfd_common, d_lookup). 0 when it
 * decided; -1 to list (a kernel that reports size 0, a difference: the listing finds
 * which fd, and counts the fixed ones again: a worker closes some of the fds it started
 * with). Its blind spot: one of the server's own fds closed and one leaked in the same
 * interval look like no change, until either changes again. */
static int fds_fast(struct watchdog *w)
{
	struct stat st;
	size_t conns, own;

	if (!w->own_listed || w->live == NULL || w->o.count_conns == NULL ||
	    fstat(w->procfd, &st) < 0 || st.st_size <= 0)
		return -1;
	conns = w->o.count_conns(w->o.arg);
	own = w->own_fixed + count_live_own(w);
	if ((size_t)st.st_size != conns + own)
		return -1;
	w->fds = (struct watchdog_fds){
	    .valid = 1, .open = (size_t)st.st_size, .conns = conns, .own = own};
	w->fds_failing = 0;
	w->fds_warned = 0;
	return 0;
}

/* After a listing: the server's own fds that are not live-checked, for fds_fast. */
static void note_own_fixed(struct watchdog *w)
{
	size_t live = w->live != NULL ? count_live_own(w) : 0;

	w->own_listed = w->live != NULL && w->fds.own >= live;
	w->own_fixed = w->own_listed ? w->fds.own - live : 0;
}

void watchdog_refresh_fds(struct watchdog *w)
{
	unsigned char *mark;
	size_t n;
	int example;

	if (w == NULL || w->procfd < 0)
		return; /* fds.valid stays 0 */
	if (fds_fast(w) == 0)
		return;
	if (scan_fds(w) < 0)
		return fds_failed(w, "reading /proc/self/fd");
	n = (size_t)(scan_max(w) + 1);
	mark = calloc(n ? n : 1, 1);
	if (mark == NULL)
		return fds_failed(w, "counting fds");
	mark_known(w, mark, n);
	example = count_fds(w, mark);
	free(mark);
	w->fds_failing = 0;
	note_own_fixed(w);
	if (w->fds.unaccounted > w->fds_warned)
		warn_unaccounted(w, example);
	w->fds_warned = w->fds.unaccounted;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The fds open now that are not checked live (listener, reserve fd, metrics) are the
 * server's own for good: stdio, the event loop's epoll fd and signal pipe, the census
 * socket, /proc/self/fd, and whatever a workers parent handed down. */
static int note_own_fds(struct watchdog *w)
{
	unsigned char *mark;
	size_t n;

	if (scan_fds(w) < 0)
		return -1;
	n = (size_t)(scan_max(w) + 1);
	mark = calloc(n ? n : 1, 1);
	w->own = malloc((w->nscan ? w->nscan : 1) * sizeof(int));
	if (mark == NULL || w->own == NULL) {
		free(mark);
		errno = ENOMEM;
		return -1;
	}
	mark_known(w, mark, n); /* own is still empty: marks the live-checked fds */
	for (size_t i = 0; i < w->nscan; i++)
		if (!mark[w->scan[i]])
			w->own[w->nown++] = w->scan[i];
	qsort(w->own, w->nown, sizeof(int), cmp_int);
	free(mark);
	return 0;
}

/* ---- census and CLOSE_WAIT tracking ------------------------------------------------ */

static void cw_collect(const struct census_sock_info *s, void *arg)
{
	struct cw_list *l = arg;

	if (s->state != CENSUS_CLOSE_WAIT || l->failed)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct cwboard_rec *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->failed = 1;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct cwboard_rec){s->cookie, s->inode, s->rqueue, 0};
}

static int cmp_cookie(const void *a, const void *b)
{
	uint64_t x = ((const struct cwboard_rec *)a)->cookie,
		 y = ((const struct cwboard_rec *)b)->cookie;

	return (x > y) - (x < y);
}

/* Ages carry over from the previous census by cookie; new sockets start now. */
static void cw_carry_ages(struct watchdog *w, int64_t now)
{
	struct cw_list tmp;

	if (w->cur.n > 1)
		qsort(w->cur.v, w->cur.n, sizeof(*w->cur.v), cmp_cookie);
	for (size_t i = 0; i < w->cur.n; i++) {
		struct cwboard_rec *r = &w->cur.v[i];
		const struct cwboard_rec *p =
		    w->prev.n ? bsearch(r, w->prev.v, w->prev.n, sizeof(*r), cmp_cookie) : NULL;
		r->first_us = p != NULL ? p->first_us : now;
	}
	tmp = w->prev;
	w->prev = w->cur;
	w->cur = tmp;
}

/* Takes the census of the port into *l (the CLOSE_WAIT sockets) and, when counts is not
 * NULL, every state's count. Touches nothing else: the census thread runs it. 0, or -1
 * with errno. */
static int census_take(struct census_sock *cs, int port, struct census_counts *counts,
		       struct cw_list *l)
{
	unsigned states = counts != NULL ? 0 : CENSUS_STATE_BIT(CENSUS_CLOSE_WAIT);
	int rc;

	l->n = 0;
	l->failed = 0;
	rc = census_each(cs, port, CENSUS_LOCAL, states, counts, cw_collect, l);
	if (rc == 0 && l->failed) {
		errno = ENOMEM;
		rc = -1;
	}
	return rc;
}

/* What follows a census taken at `now` whose result is rc (errno kept) and whose list
 * is w->cur: 0 when it worked; the failure is logged once until it works again. */
static int watchdog_census_taken(struct watchdog *w, int rc, int64_t now)
{
	if (rc < 0) {
		if (!w->census_failing)
			log_warn("census of port %d: %s", w->o.port, strerror(errno));
		w->census_failing = 1;
		w->have_census = 0;
		return -1;
	}
	if (w->census_failing)
		log_info("census of port %d works again", w->o.port);
	w->census_failing = 0;
	w->have_census = w->o.full;
	w->censuses++;
	cw_carry_ages(w, now);
	return 0;
}

static int watchdog_census_run(struct watchdog *w, int64_t now)
{
	int rc = census_take(w->cs, w->o.port, w->o.full ? &w->census : NULL, &w->cur);

	return watchdog_census_taken(w, rc, now);
}

/* The census taker shares what it found with the other workers. */
static void watchdog_post(struct watchdog *w)
{
	size_t n = cwboard_post(w->o.board, w->prev.v, w->prev.n);

	if (n < w->prev.n && !w->board_truncated)
		log_warn("close-wait watchdog: %zu CLOSE_WAIT sockets on port %d, the workers' "
			 "board holds %zu: the others are not judged",
			 w->prev.n, w->o.port, n);
	w->board_truncated = n < w->prev.n;
}

/* The other workers take the census taker's list as their own, once per census: judged
 * again at later ticks, a list that census_next_due left standing for seconds made every
 * socket on it look older than close_wait_alarm, and each worker looked its connections
 * up by fstat every tick (perf at 500k connections: fstat a tenth of the CPU). 0, or -1
 * (a failure logged once) when there is nothing new to judge. */
static int watchdog_board_read(struct watchdog *w)
{
	uint64_t gen = w->board_gen;
	int rc = cwboard_read(w->o.board, &w->prev.v, &w->prev.cap, &w->prev.n, &gen);

	if (rc < 0 && !w->board_failing)
		log_warn("close-wait watchdog: reading worker 0's census: %s", strerror(errno));
	w->board_failing = rc < 0;
	if (rc < 0 || gen == 0 || gen == w->board_gen)
		return -1;
	w->board_gen = gen;
	return 0;
}

static int cmp_inode(const void *a, const void *b)
{
	uint32_t x = ((const struct conn_ino *)a)->inode, y = ((const struct conn_ino *)b)->inode;

	return (x > y) - (x < y);
}

/* Out of memory: the index stops growing; the connections left out read as not ours. */
static void index_conn(void *arg, const struct watchdog_conn *c)
{
	struct watchdog *w = arg;
	struct stat st;

	if (w->nindex == w->capindex) {
		size_t cap = w->capindex ? w->capindex * 2 : 64;
		struct conn_ino *v = realloc(w->index, cap * sizeof(*v));
		if (v == NULL)
			return;
		w->index = v;
		w->capindex = cap;
	}
	if (fstat(c->fd, &st) == 0)
		w->index[w->nindex++] = (struct conn_ino){(uint32_t)st.st_ino, *c};
}

/* inode -> connection, built only when an old CLOSE_WAIT socket needs it (an fstat per
 * connection). */
static void build_index(struct watchdog *w)
{
	w->index_built = 1;
	w->nindex = 0;
	w->o.each_conn(w->o.arg, index_conn, w);
	qsort(w->index, w->nindex, sizeof(*w->index), cmp_inode);
}

static const struct watchdog_conn *find_conn(struct watchdog *w, uint32_t inode)
{
	struct conn_ino key = {.inode = inode}, *hit;

	if (!w->index_built)
		build_index(w);
	if (w->nindex == 0 || inode == 0)
		return NULL;
	hit = bsearch(&key, w->index, w->nindex, sizeof(key), cmp_inode);
	return hit != NULL ? &hit->c : NULL;
}

/* ---- the CLOSE_WAIT verdict -------------------------------------------------------- */

#define CW_FLUSHING (-1) /* deliberately flushing the echo to a half-closed peer */
#define CW_NOT_OURS (-2) /* another worker's socket */

/* For an old CLOSE_WAIT socket: CW_FLUSHING when the server is deliberately flushing the
 * echo to a half-closed peer (its FIN known, echo still owed, within fin_timeout),
 * CW_NOT_OURS, or why it is overdue. *age_us becomes the time since the FIN when the
 * connection knows it. */
static int cw_verdict(struct watchdog *w, const struct cwboard_rec *r, int64_t now, int64_t *age_us)
{
	const struct server_config *cfg = w->o.cfg;
	/* A fin_timeout expiring in this very loop iteration has not closed yet: one census
	 * interval of grace. */
	int64_t limit = cfg->fin_timeout * 1000 + cfg->census_interval * 1000;
	const struct watchdog_conn *c = find_conn(w, r->inode);
	int64_t since_fin;

	if (c == NULL)
		/* With workers the port's other sockets belong to other workers; alone, a
		 * CLOSE_WAIT socket nobody accepted waits in the accept queue. */
		return w->o.shared_port ? CW_NOT_OURS : CW_NOT_ACCEPTED;
	if (c->eof_ignored)
		return CW_EOF_IGNORED;
	if (!c->peer_fin)
		return CW_FIN_UNSEEN;
	since_fin = now - c->fin_us;
	if (since_fin > *age_us)
		*age_us = since_fin;
	if (cfg->fin_timeout > 0 && since_fin > limit)
		return CW_PAST_FIN;
	if (c->out_len > 0 || r->rqueue > 0)
		return CW_FLUSHING;
	return CW_OTHER;
}

static void cw_warn(const struct watchdog *w, const uint64_t *why)
{
	char detail[256];
	size_t n = 0;

	detail[0] = '\0';
	for (int i = 0; i < CW_NWHY; i++) {
		if (why[i] == 0)
			continue;
		n += (size_t)snprintf(detail + n, n < sizeof(detail) ? sizeof(detail) - n : 0,
				      "%s%s=%llu", n ? " " : "", why_names[i],
				      (unsigned long long)why[i]);
	}
	log_warn("close-wait watchdog: %llu sockets on port %d in CLOSE_WAIT for more than %lldms "
		 "and not being flushed, oldest %llums (%s)",
		 (unsigned long long)w->cw.overdue, w->o.port,
		 (long long)w->o.cfg->close_wait_alarm, (unsigned long long)w->cw.oldest_ms,
		 detail);
}

/* Judges every CLOSE_WAIT socket older than close_wait_alarm; warns once per census when
 * some are overdue. */
static void watchdog_check_close_wait(struct watchdog *w, int64_t now)
{
	int64_t alarm = w->o.cfg->close_wait_alarm * 1000;
	uint64_t why[CW_NWHY] = {0};
	uint64_t warnings = w->cw.warnings;

	memset(&w->cw, 0, sizeof(w->cw));
	w->cw.warnings = warnings;
	w->index_built = 0;
	for (size_t i = 0; alarm > 0 && i < w->prev.n; i++) {
		const struct cwboard_rec *r = &w->prev.v[i];
		int64_t age = now - r->first_us;
		int v;

		if (age < alarm)
			continue;
		v = cw_verdict(w, r, now, &age);
		w->cw.flushing += v == CW_FLUSHING;
		if (v < 0)
			continue;
		why[v]++;
		w->cw.overdue++;
		w->cw.past_fin += v == CW_PAST_FIN;
		if ((uint64_t)(age / 1000) > w->cw.oldest_ms)
			w->cw.oldest_ms = (uint64_t)(age / 1000);
	}
	if (w->cw.overdue > 0) {
		w->cw.warnings++;
		cw_warn(w, why);
	}
}

/* ---- start, measure, stop ---------------------------------------------------------- */

/* The next census after one that started at `start` and cost `took` of CPU: the census
 * runs in the event loop, so at census_interval 1s a census of a second (2,000,000
 * sockets) would stall the loop for good (census_next_due). The tick itself keeps its
 * period: the fd accounting and the figures go on. */
static void watchdog_census_pace(struct watchdog *w, int64_t start, int64_t took)
{
	int64_t interval = w->o.cfg->census_interval * 1000;
	int stretched;

	w->census_due_us = census_next_due(start, took, interval);
	stretched = w->census_due_us != 0;
	if (stretched && !w->census_stretched)
		log_info("census of port %d took %lld ms of CPU: the next ones at most every %lld "
			 "ms, not "
			 "every census_interval (%lld ms), so the census keeps to a tenth of this "
			 "process's time (said once)",
			 w->o.port, (long long)(took / 1000),
			 (long long)(took * CENSUS_SHARE / 1000), (long long)(interval / 1000));
	w->census_stretched |= stretched;
}

/* With a board, only the census taker asks the kernel. */
static int watchdog_reads_board(const struct watchdog *w)
{
	return w->o.board != NULL && !w->o.census_taker;
}

/* The census thread: one census each time the loop asks, until told to quit. */
static void *census_thread(void *arg)
{
	struct watchdog *w = arg;
	struct census_job *j = w->job;

	(void)pthread_setname_np(pthread_self(), CENSUS_THREAD); /* for top -H; best effort */
	pthread_mutex_lock(&j->mu);
	for (;;) {
		int64_t cpu;
		int rc, err;

		while (!j->want && !j->quit)
			pthread_cond_wait(&j->cv, &j->mu);
		if (j->quit)
			break;
		j->want = 0;
		j->busy = 1;
		pthread_mutex_unlock(&j->mu);
		cpu = clock_thread_cpu_us();
		rc = census_take(w->cs, w->o.port, w->o.full ? &j->counts : NULL, &j->list);
		err = errno;
		cpu = clock_thread_cpu_us() - cpu;
		pthread_mutex_lock(&j->mu);
		j->rc = rc;
		j->err = err;
		j->cpu_us = cpu;
		j->busy = 0;
		j->done = 1;
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* The loop's side of the census thread: takes a finished census (1, its list swapped
 * into w->cur), or asks for the next one when it is due and none is under way (0).
 * Never waits for the census. */
static int census_job_poll(struct watchdog *w, int64_t now, int *rc, int64_t *start, int64_t *cpu)
{
	struct census_job *j = w->job;
	int got = 0;

	pthread_mutex_lock(&j->mu);
	if (j->done) {
		struct cw_list tmp = w->cur;

		w->cur = j->list;
		j->list = tmp;
		if (w->o.full)
			w->census = j->counts;
		*rc = j->rc;
		errno = j->err;
		*start = j->start_us;
		*cpu = j->cpu_us;
		j->done = 0;
		got = 1;
	} else if (!j->want && !j->busy && now >= w->census_due_us) {
		j->want = 1;
		j->start_us = now;
		pthread_cond_signal(&j->cv);
	}
	pthread_mutex_unlock(&j->mu);
	return got;
}

/* A census is taken (in the loop, or by the thread and taken back here): pace the next,
 * then share and judge what it found. */
static void watchdog_census_done(struct watchdog *w, int rc, int64_t start, int64_t cpu)
{
	int64_t now = clock_mono_us();

	watchdog_census_pace(w, start, cpu);
	if (rc == 0) {
		if (w->o.board != NULL)
			watchdog_post(w);
		watchdog_check_close_wait(w, now);
	}
}

void watchdog_measure(struct watchdog *w)
{
	int64_t now = clock_mono_us();

	if (w == NULL)
		return;
	if (watchdog_reads_board(w)) {
		if (watchdog_board_read(w) == 0)
			watchdog_check_close_wait(w, now);
	} else if (w->job != NULL) {
		int rc;
		int64_t start, cpu;

		if (census_job_poll(w, now, &rc, &start, &cpu)) {
			rc = watchdog_census_taken(w, rc, start);
			watchdog_census_done(w, rc, start, cpu);
			/* and the next one, when due: one census per census_interval */
			(void)census_job_poll(w, now, &rc, &start, &cpu);
		}
	} else if (w->cs != NULL && now >= w->census_due_us) {
		int64_t cpu = clock_thread_cpu_us();
		int rc = watchdog_census_run(w, now);

		watchdog_census_done(w, rc, now, clock_thread_cpu_us() - cpu);
	}
	watchdog_refresh_fds(w);
}

/* With workers the census taker takes its census on a thread (struct census_job). Without
 * one (it could not start, or a single process, which has no board) the census runs in
 * the loop as before. */
static void census_job_start(struct watchdog *w)
{
	struct census_job *j;
	int err;

	if (w->cs == NULL || w->o.board == NULL || !w->o.census_taker)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		log_warn("watchdog: census thread: out of memory (the census runs in the loop)");
		return;
	}
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	w->job = j;
	err = pthread_create(&j->tid, NULL, census_thread, w);
	if (err != 0) {
		log_warn("watchdog: census thread: pthread_create: %s (the census runs in the "
			 "loop)",
			 strerror(err));
		pthread_cond_destroy(&j->cv);
		pthread_mutex_destroy(&j->mu);
		free(j);
		w->job = NULL;
	}
}

/* Stops the census thread; a census under way is finished first (seconds at most). */
static void census_job_stop(struct watchdog *w)
{
	struct census_job *j = w->job;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->quit = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->tid, NULL);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j->list.v);
	free(j);
	w->job = NULL;
}

struct watchdog *watchdog_start(const struct watchdog_owner *owner)
{
	struct watchdog *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_error("watchdog: out of memory");
		return NULL;
	}
	w->o = *owner;
	/* Opened first, so the census socket is one of the server's own fds. Without it the
	 * fd accounting still runs, and the figures are still published (server.c). A worker
	 * that reads the board needs none. */
	w->cs = watchdog_reads_board(w) ? NULL : census_open();
	if (w->cs == NULL && !watchdog_reads_board(w))
		log_error("watchdog: census socket (NETLINK_SOCK_DIAG): %s (no census, no "
			  "CLOSE_WAIT watchdog)",
			  strerror(errno));
	/* Every fd is below RLIMIT_NOFILE (the cheap check's scratch; without it, listing). */
	if (sysconf(_SC_OPEN_MAX) > 0) {
		w->nlive = (size_t)sysconf(_SC_OPEN_MAX);
		w->live = malloc(w->nlive);
	}
	w->procfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->procfd < 0) {
		log_warn("watchdog: open /proc/self/fd: %s (no fd accounting)", strerror(errno));
	} else if (note_own_fds(w) < 0) {
		log_warn("watchdog: reading /proc/self/fd: %s (no fd accounting)", strerror(errno));
		close(w->procfd);
		w->procfd = -1;
	}
	census_job_start(w);
	return w;
}

void watchdog_stop(struct watchdog *w)
{
	if (w == NULL)
		return;
	census_job_stop(w);
	census_close(w->cs);
	if (w->procfd >= 0)
		close(w->procfd);
	free(w->prev.v);
	free(w->cur.v);
	free(w->index);
	free(w->own);
	free(w->live);
	free(w->scan);
	free(w);
}

const struct watchdog_fds *watchdog_fds(const struct watchdog *w)
{
	return w != NULL ? &w->fds : NULL;
}

const struct watchdog_close_wait *watchdog_close_wait(const struct watchdog *w)
{
	if (w == NULL)
		return NULL;
	if (watchdog_reads_board(w))
		return w->board_gen > 0 ? &w->cw : NULL;
	return w->cs != NULL ? &w->cw : NULL;
}

uint64_t watchdog_censuses(const struct watchdog *w)
{
	return w != NULL ? w->censuses : 0;
}

const struct census_counts *watchdog_census(const struct watchdog *w)
{
	return w != NULL && w->o.full && w->have_census ? &w->census : NULL;
}

void watchdog_set_shared_port(struct watchdog *w, int on)
{
	if (w != NULL)
		w->o.shared_port = on;
}
