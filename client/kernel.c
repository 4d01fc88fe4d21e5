/* kernel: TcpExt deltas and sockstat of a run, per network namespace (see kernel.h). */
#include "kernel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BIT(i) (1U << (i))

int kernel_parse_sockstat6(const char *text, uint64_t *inuse)
{
	for (const char *p = text; p != NULL && *p != '\0';
	     p = strchr(p, '\n'), p = p ? p + 1 : p) {
		char *end;
		if (strncmp(p, "TCP6: inuse ", 12) != 0)
			continue;
		if (p[12] < '0' || p[12] > '9')
			return -1;
		errno = 0;
		*inuse = strtoull(p + 12, &end, 10);
		return errno == 0 && (*end == '\n' || *end == ' ' || *end == '\0') ? 0 : -1;
	}
	return -1;
}

/* TCP6 inuse at the end; not found when the file is absent (IPv6 off) or unreadable. */
static void read_sockstat6(struct kernel_view *v)
{
	char text[1024];
	FILE *f = fopen("/proc/net/sockstat6", "r");
	size_t n;

	if (f == NULL)
		return;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	v->inuse6_found = kernel_parse_sockstat6(text, &v->inuse6) == 0;
}

void kernel_start(struct kernel_watch *w)
{
	memset(w, 0, sizeof(*w));
	w->f.netstat_fd = w->f.sockstat_fd = -1;
	if (kstat_open(&w->f) == 0)
		kstat_read(&w->f, &w->start);
}

void kernel_end(struct kernel_watch *w, struct kernel_view *v)
{
	struct kstat end;

	memset(v, 0, sizeof(*v));
	if (w->f.netstat_fd < 0 && w->f.sockstat_fd < 0)
		return;
	kstat_read(&w->f, &end);
	kstat_close(&w->f);
	kstat_delta(&w->start, &end, &v->k);
	kstat_read_limits(&v->limits);
	read_sockstat6(v);
	v->available = v->k.tcpext_found != 0 || v->k.sockstat_found != 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

void kernel_merge(struct kernel_view *dst, const struct kernel_view *src, int first)
{
	if (first) {
		*dst = *src;
		return;
	}
	if (!dst->available || !src->available) {
		memset(dst, 0, sizeof(*dst));
		return;
	}
	dst->k.tcpext_found &= src->k.tcpext_found;
	dst->k.sockstat_found &= src->k.sockstat_found;
	dst->limits.found &= src->limits.found;
	dst->inuse6_found &= src->inuse6_found;
	dst->inuse6 = dst->inuse6_found ? max_u64(dst->inuse6, src->inuse6) : 0;
	for (int i = 0; i < KSTAT_NCOUNTERS; i++)
		dst->k.tcpext[i] =
		    dst->k.tcpext_found & BIT(i) ? dst->k.tcpext[i] + src->k.tcpext[i] : 0;
	for (int i = 0; i < KSTAT_NSOCKSTAT; i++)
		dst->k.sockstat[i] = dst->k.sockstat_found & BIT(i)
					 ? max_u64(dst->k.sockstat[i], src->k.sockstat[i])
					 : 0;
	for (int i = 0; i < KSTAT_NLIMITS; i++)
		dst->limits.v[i] =
		    dst->limits.found & BIT(i) ? min_u64(dst->limits.v[i], src->limits.v[i]) : 0;
	dst->available = dst->k.tcpext_found != 0 || dst->k.sockstat_found != 0;
}

/* ---- JSON ---- */

void kernel_json(struct jw *w, const struct kernel_view *v)
{
	jw_obj(w, "kernel");
	jw_bool(w, "available", v->available);
	if (v->available) {
		jw_obj(w, "delta");
		for (int i = 0; i < KSTAT_NCOUNTERS; i++)
			if (v->k.tcpext_found & BIT(i))
				jw_u64(w, kstat_counter_name((enum kstat_counter)i),
				       v->k.tcpext[i]);
		jw_obj_end(w);
		jw_obj(w, "sockstat");
		for (int i = 0; i < KSTAT_NSOCKSTAT; i++)
			if (v->k.sockstat_found & BIT(i))
				jw_u64(w, kstat_sockstat_name((enum kstat_sockstat)i),
				       v->k.sockstat[i]);
		jw_obj_end(w);
		if (v->inuse6_found) {
			jw_obj(w, "sockstat6");
			jw_u64(w, "inuse", v->inuse6);
			jw_obj_end(w);
		}
		jw_obj(w, "limits");
		for (int i = 0; i < KSTAT_NLIMITS; i++)
			if (v->limits.found & BIT(i))
				jw_u64(w, kstat_limit_name((enum kstat_limit)i), v->limits.v[i]);
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

/* Every member of object `obj` (which may be absent) by its name: index from parse(),
 * value into vals, bit into *found. */
static int read_group(const struct jnode *obj, int (*parse)(const char *), uint64_t *vals,
		      unsigned *found, const char *group, char *err, size_t errlen)
{
	if (obj == NULL)
		return 0;
	if (obj->type != J_OBJ) {
		snprintf(err, errlen, "kernel.%s is not an object", group);
		return -1;
	}
	for (const struct jnode *m = obj->child; m != NULL; m = m->next) {
		int i = parse(m->key);
		if (i < 0 || m->type != J_NUM || !m->is_u64) {
			snprintf(err, errlen, "kernel.%s.%s: unknown name or not a whole number",
				 group, m->key);
			return -1;
		}
		vals[i] = m->u64;
		*found |= BIT(i);
	}
	return 0;
}

int kernel_read(struct kernel_view *v, const struct jnode *n, char *err, size_t errlen)
{
	const struct jnode *avail = json_get(n, "available");

	memset(v, 0, sizeof(*v));
	if (n == NULL)
		return 0;
	if (avail == NULL || avail->type != J_BOOL) {
		snprintf(err, errlen, "kernel without \"available\"");
		return -1;
	}
	if (avail->num == 0)
		return 0;
	if (read_group(json_get(n, "delta"), kstat_counter_parse, v->k.tcpext, &v->k.tcpext_found,
		       "delta", err, errlen) < 0 ||
	    read_group(json_get(n, "sockstat"), kstat_sockstat_parse, v->k.sockstat,
		       &v->k.sockstat_found, "sockstat", err, errlen) < 0 ||
	    read_group(json_get(n, "limits"), kstat_limit_parse, v->limits.v, &v->limits.found,
		       "limits", err, errlen) < 0)
		return -1;
	if (json_get(n, "sockstat6") != NULL) {
		if (json_get_u64(json_get(n, "sockstat6"), "inuse", &v->inuse6) < 0) {
			snprintf(err, errlen,
				 "kernel.sockstat6.inuse missing or not a whole number");
			return -1;
		}
		v->inuse6_found = 1;
	}
	v->available = v->k.tcpext_found != 0 || v->k.sockstat_found != 0;
	return 0;
}

/* ---- table ---- */

/* " name N" after a label, "  name N" after another figure. */
static void sockstat_text(FILE *f, const struct kernel_view *v, enum kstat_sockstat s, int *n)
{
	if (v->k.sockstat_found & BIT(s))
		fprintf(f, "%s%s %llu", (*n)++ > 0 ? "  " : " ", kstat_sockstat_name(s),
			(unsigned long long)v->k.sockstat[s]);
}

/* "  host-wide: orphan 3 (tcp_max_orphans 131072)  alloc 2005  mem 3033 pages (tcp_mem 1 2
 * 3)": the kernel's global counts, which a namespace cannot separate from the host's. */
static void host_wide_text(FILE *f, const struct kernel_view *v, int merged)
{
	const struct kstat_limits *l = &v->limits;
	unsigned mem = BIT(KSTAT_MEM_LOW) | BIT(KSTAT_MEM_PRESSURE) | BIT(KSTAT_MEM_HIGH);
	int n = 0;

	fprintf(f, "  host-wide:");
	sockstat_text(f, v, KSTAT_TCP_ORPHAN, &n);
	if ((v->k.sockstat_found & BIT(KSTAT_TCP_ORPHAN)) && (l->found & BIT(KSTAT_MAX_ORPHANS)))
		fprintf(f, " (tcp_max_orphans %s%llu)", merged ? "smallest " : "",
			(unsigned long long)l->v[KSTAT_MAX_ORPHANS]);
	sockstat_text(f, v, KSTAT_TCP_ALLOC, &n);
	sockstat_text(f, v, KSTAT_TCP_MEM, &n);
	if (v->k.sockstat_found & BIT(KSTAT_TCP_MEM)) {
		fprintf(f, " pages");
		if ((l->found & mem) == mem)
			fprintf(f, " (tcp_mem %s%llu %llu %llu)", merged ? "smallest " : "",
				(unsigned long long)l->v[KSTAT_MEM_LOW],
				(unsigned long long)l->v[KSTAT_MEM_PRESSURE],
				(unsigned long long)l->v[KSTAT_MEM_HIGH]);
	}
	if ((l->found & (BIT(KSTAT_MAX_ORPHANS) | mem)) == 0)
		fprintf(f, " (limits not readable in this namespace)");
	fprintf(f, "\n");
}

void kernel_table(FILE *f, const struct kernel_view *v, int merged)
{
	int n = 0;

	if (!v->available) {
		fprintf(f, "kernel (this network namespace): %s\n",
			merged ? "not in every merged result"
			       : "counters not readable (/proc/net/netstat, /proc/net/sockstat)");
		return;
	}
	fprintf(f, "kernel (this network namespace, every process in it): %s\n",
		merged ? "deltas summed over the merged runs; sockstat the largest of any"
		       : "deltas over the run; sockstat at the end");
	for (int i = 0; i < KSTAT_NCOUNTERS; i++) {
		if (!(v->k.tcpext_found & BIT(i)))
			continue;
		fprintf(f, "  %s %llu", kstat_counter_name((enum kstat_counter)i),
			(unsigned long long)v->k.tcpext[i]);
		if (++n % 4 == 0)
			fprintf(f, "\n");
	}
	if (n % 4 != 0)
		fprintf(f, "\n");
	if (v->k.sockstat_found & (BIT(KSTAT_TCP_INUSE) | BIT(KSTAT_TCP_TW))) {
		int m = 0;
		fprintf(f, "  sockstat:");
		if ((v->k.sockstat_found & BIT(KSTAT_TCP_INUSE)) && v->inuse6_found) {
			/* sockstat's inuse is IPv4 only; sockstat6 has the IPv6 ones */
			fprintf(f, " inuse %llu (IPv4 %llu, IPv6 %llu)",
				(unsigned long long)(v->k.sockstat[KSTAT_TCP_INUSE] + v->inuse6),
				(unsigned long long)v->k.sockstat[KSTAT_TCP_INUSE],
				(unsigned long long)v->inuse6);
			m++;
		} else {
			sockstat_text(f, v, KSTAT_TCP_INUSE, &m);
		}
		sockstat_text(f, v, KSTAT_TCP_TW, &m);
		fprintf(f, "\n");
	}
	if (v->k.sockstat_found &
	    (BIT(KSTAT_TCP_ORPHAN) | BIT(KSTAT_TCP_ALLOC) | BIT(KSTAT_TCP_MEM)))
		host_wide_text(f, v, merged);
}

/* ---- --expect ---- */

int kernel_lookup(const struct kernel_view *v, const char *what, double *out, char *why,
		  size_t whylen)
{
	int sockstat = strncmp(what, "sockstat.", 9) == 0;
	int i = sockstat ? kstat_sockstat_parse(what + 9) : kstat_counter_parse(what);
	unsigned found = sockstat ? v->k.sockstat_found : v->k.tcpext_found;

	if (strcmp(what, "sockstat6.inuse") == 0) {
		if (!v->inuse6_found) {
			snprintf(why, whylen, "the kernel's /proc/net/sockstat6 could not be read");
			return 1;
		}
		*out = (double)v->inuse6;
		return 0;
	}
	if (i < 0)
		return -1;
	if (!v->available || !(found & BIT(i))) {
		snprintf(why, whylen, "the kernel's %s could not be read",
			 sockstat ? "/proc/net/sockstat" : "/proc/net/netstat");
		return 1;
	}
	*out = (double)(sockstat ? v->k.sockstat[i] : v->k.tcpext[i]);
	return 0;
}
