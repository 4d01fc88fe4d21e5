#include "stats.h"
#include "log.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const reason_names[CLOSE_NREASONS] = {
	"eof",           "reset",       "timeout",  "heartbeat", "write-timeout",
	"fin-timeout",   "overload",    "shutdown", "error",
};

const char *stats_reason_name(enum close_reason r)
{
	return (unsigned)r < CLOSE_NREASONS ? reason_names[r] : "?";
}

enum close_reason stats_reason_for_errno(int err)
{
	switch (err) {
	case ECONNRESET:
	case EPIPE:
		return CLOSE_RESET;
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return CLOSE_TIMEOUT;
	default:
		return CLOSE_ERROR;
	}
}

/* Heap in use by mallinfo2 (uordblks + hblkhd, mmap'd blocks included), KiB: closer to what
 * the server holds than RSS, which also counts freed memory the allocator keeps. Not exact:
 * glibc counts the free chunks its per-thread caches keep (up to 7 per size class) as in
 * use, about 230 KiB at most here (make soak runs with GLIBC_TUNABLES=
 * glibc.malloc.tcache_count=0 so that growth measures live bytes). */
static unsigned long stats_heap_kb(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (unsigned long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Resident set size in KiB from /proc/self/statm (in pages, which are not 4 KiB
 * everywhere: 16 or 64 KiB on some arm64 kernels), or 0. */
static unsigned long stats_rss_kb(void)
{
	unsigned long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 && page > 0 ? resident * ((unsigned long)page / 1024) : 0;
}

const char *stats_json(const struct stats *s, char *buf, size_t len)
{
	size_t n = 0;

#define APPEND(...)                                                                                \
	do {                                                                                       \
		int r_ = snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__);                    \
		if (r_ > 0)                                                                        \
			n += (size_t)r_;                                                           \
	} while (0)
	APPEND("{\"open\":%llu,\"accepted\":%llu,\"closed\":{", (unsigned long long)s->open,
	       (unsigned long long)s->accepted);
	for (int r = 0; r < CLOSE_NREASONS; r++)
		APPEND("%s\"%s\":%llu", r ? "," : "", reason_names[r],
		       (unsigned long long)s->closed[r]);
	APPEND("},\"fin_to_close_us\":{\"count\":%llu,\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,"
	       "\"max\":%llu}",
	       (unsigned long long)hist_count(&s->fin_to_close_us),
	       (unsigned long long)hist_percentile(&s->fin_to_close_us, 50),
	       (unsigned long long)hist_percentile(&s->fin_to_close_us, 99),
	       (unsigned long long)hist_percentile(&s->fin_to_close_us, 99.9),
	       (unsigned long long)hist_max(&s->fin_to_close_us));
	APPEND(",\"lost\":%llu,\"lost_unknown\":%llu", (unsigned long long)s->lost,
	       (unsigned long long)s->lost_unknown);
	APPEND(",\"bytes_in\":%llu,\"bytes_out\":%llu,\"emfile_pauses\":%llu,\"shed\":%llu,"
	       "\"eof_ignored\":%llu,\"fd_unaccounted\":%lld,\"heap_kb\":%lu,\"rss_kb\":%lu",
	       (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	       (unsigned long long)s->emfile_pauses, (unsigned long long)s->shed,
	       (unsigned long long)s->eof_ignored, (long long)s->fd_unaccounted, stats_heap_kb(), stats_rss_kb());
	APPEND(",\"loop_lag_max_us\":%llu", (unsigned long long)s->loop_lag_max_us);
	/* this process's own figure, like heap_kb: read now, not from s */
	APPEND(",\"log_dropped\":%llu}", (unsigned long long)log_dropped_lines());
#undef APPEND
	if (n >= len && len > 0)
		buf[len - 1] = '\0';
	return buf;
}

void stats_add_counters(struct stats *a, const struct stats *b)
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
	a->lost += b->lost;
	a->lost_unknown += b->lost_unknown;
	a->log_dropped += b->log_dropped;
	hist_merge(&a->loop_lag_us, &b->loop_lag_us);
	if (b->loop_lag_max_us > a->loop_lag_max_us)
		a->loop_lag_max_us = b->loop_lag_max_us;
}

void stats_log(const struct stats *s)
{
	char buf[1024];

	log_always("counters %s", stats_json(s, buf, sizeof(buf)));
}
