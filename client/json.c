#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---- */

void jw_init(struct jw *w)
{
	memset(w, 0, sizeof(*w));
}

void jw_free(struct jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		char *nb;
		while (cap < w->len + n + 1)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (nb == NULL) {
			w->failed = 1;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void jw_printf(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jw_printf(struct jw *w, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		w->failed = 1;
		return;
	}
	jw_put(w, buf, (size_t)n);
}

static void jw_string(struct jw *w, const char *s)
{
	jw_put(w, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			jw_put(w, esc, 2);
		} else if (c < 0x20) {
			jw_printf(w, "\\u%04x", c);
		} else {
			jw_put(w, s, 1);
		}
	}
	jw_put(w, "\"", 1);
}

/* Comma and key before a value. */
static void jw_key(struct jw *w, const char *key)
{
	if (w->count[w->depth]++ > 0)
		jw_put(w, ",", 1);
	if (key != NULL) {
		jw_string(w, key);
		jw_put(w, ":", 1);
	}
}

static void jw_open(struct jw *w, const char *key, const char *bracket)
{
	jw_key(w, key);
	jw_put(w, bracket, 1);
	if (w->depth + 1 >= JW_DEPTH) {
		w->failed = 1;
		return;
	}
	w->count[++w->depth] = 0;
}

static void jw_close(struct jw *w, const char *bracket)
{
	if (w->depth > 0)
		w->depth--;
	jw_put(w, bracket, 1);
}

void jw_obj(struct jw *w, const char *key)
{
	jw_open(w, key, "{");
}

void jw_obj_end(struct jw *w)
{
	jw_close(w, "}");
}

void jw_arr(struct jw *w, const char *key)
{
	jw_open(w, key, "[");
}

void jw_arr_end(struct jw *w)
{
	jw_close(w, "]");
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	jw_printf(w, "%llu", (unsigned long long)v);
}

void jw_i64(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_printf(w, "%lld", (long long)v);
}

void jw_double(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	if (isfinite(v))
		jw_printf(w, "%.6g", v);
	else
		jw_put(w, "null", 4);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_string(w, s);
}

void jw_bool(struct jw *w, const char *key, int v)
{
	jw_key(w, key);
	jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_raw(struct jw *w, const char *key, const char *json)
{
	jw_key(w, key);
	jw_put(w, json, strlen(json));
}

const char *jw_finish(struct jw *w)
{
	if (w->failed || w->buf == NULL)
		return NULL;
	return w->buf;
}

/* ---- reader ---- */

struct jp {
	const char *text, *p;
	char *err;
	size_t errlen;
	int depth;
};

static struct jnode *jp_value(struct jp *jp);

static struct jnode *jp_fail(struct jp *jp, const char *what)
{
	if (jp->err[0] == '\0')
		snprintf(jp->err, jp->errlen, "offset %ld: %s", (long)(jp->p - jp->text), what);
	return NULL;
}

static void jp_space(struct jp *jp)
{
	while (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r')
		jp->p++;
}

/* One escape after the backslash; \u escapes outside ASCII become '?'. -1 when bad. */
static int jp_escape(struct jp *jp)
{
	char hex[5] = {0};
	char e = *jp->p++;

	switch (e) {
	case '"':
	case '\\':
	case '/':
		return e;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		if (strspn(jp->p, "0123456789abcdefABCDEF") < 4)
			return -1;
		memcpy(hex, jp->p, 4);
		jp->p += 4;
		return strtoul(hex, NULL, 16) < 0x80 ? (int)strtoul(hex, NULL, 16) : '?';
	default:
		return -1;
	}
}

/* A string body after the opening quote. */
static char *jp_string(struct jp *jp)
{
	size_t cap = 16, n = 0;
	char *s = malloc(cap), *ns;

	if (s == NULL) {
		jp_fail(jp, "out of memory");
		return NULL;
	}
	while (*jp->p != '"') {
		int c = (unsigned char)*jp->p++;
		if (c < 0x20) {
			jp->p--;
			jp_fail(jp, c ? "control character in a string" : "unterminated string");
			goto fail;
		}
		if (c == '\\' && (c = jp_escape(jp)) < 0) {
			jp_fail(jp, "bad escape");
			goto fail;
		}
		if (n + 2 > cap) {
			ns = realloc(s, cap *= 2);
			if (ns == NULL) {
				jp_fail(jp, "out of memory");
				goto fail;
			}
			s = ns;
		}
		s[n++] = (char)c;
	}
	s[n] = '\0';
	jp->p++;
	return s;
fail:
	free(s);
	return NULL;
}

static struct jnode *jp_node(struct jp *jp, enum jtype t)
{
	struct jnode *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return jp_fail(jp, "out of memory");
	n->type = t;
	n->start = jp->p;
	return n;
}

static struct jnode *jp_number(struct jp *jp)
{
	struct jnode *n = jp_node(jp, J_NUM);
	char *end;

	if (n == NULL)
		return NULL;
	errno = 0;
	n->num = strtod(jp->p, &end);
	if (end == jp->p) {
		free(n);
		return jp_fail(jp, "bad value");
	}
	if (*jp->p >= '0' && *jp->p <= '9' &&
	    strspn(jp->p, "0123456789") == (size_t)(end - jp->p)) {
		errno = 0;
		n->u64 = strtoull(jp->p, NULL, 10);
		n->is_u64 = errno == 0;
	}
	jp->p = end;
	return n;
}

static struct jnode *jp_literal(struct jp *jp)
{
	static const struct {
		const char *word;
		enum jtype t;
		double v;
	} lits[] = {{"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t len = strlen(lits[i].word);
		if (strncmp(jp->p, lits[i].word, len) == 0) {
			struct jnode *n = jp_node(jp, lits[i].t);
			if (n != NULL)
				n->num = lits[i].v;
			jp->p += len;
			return n;
		}
	}
	return jp_number(jp);
}

/* Elements of an array or members of an object, after the opening bracket. */
static struct jnode *jp_container(struct jp *jp, struct jnode *n, char close, int members)
{
	struct jnode **tail = &n->child;

	jp_space(jp);
	if (*jp->p == close) {
		jp->p++;
		return n;
	}
	for (;;) {
		char *key = NULL;
		struct jnode *v;
		jp_space(jp);
		if (members) {
			if (*jp->p != '"')
				return jp_fail(jp, "expected a member name");
			jp->p++;
			key = jp_string(jp);
			if (key == NULL)
				return NULL;
			jp_space(jp);
			if (*jp->p++ != ':') {
				free(key);
				return jp_fail(jp, "expected ':'");
			}
		}
		v = jp_value(jp);
		if (v == NULL) {
			free(key);
			return NULL;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		jp_space(jp);
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p++ == close)
			return n;
		return jp_fail(jp, members ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static struct jnode *jp_value(struct jp *jp)
{
	struct jnode *n, *r;

	jp_space(jp);
	if (*jp->p == '"') {
		n = jp_node(jp, J_STR);
		if (n == NULL)
			return NULL;
		jp->p++;
		n->str = jp_string(jp);
		if (n->str == NULL) {
			free(n);
			return NULL;
		}
		return n;
	}
	if (*jp->p != '{' && *jp->p != '[')
		return jp_literal(jp);
	if (++jp->depth > 64)
		return jp_fail(jp, "nested too deep");
	n = jp_node(jp, *jp->p == '{' ? J_OBJ : J_ARR);
	if (n == NULL)
		return NULL;
	jp->p++;
	r = jp_container(jp, n, n->type == J_OBJ ? '}' : ']', n->type == J_OBJ);
	jp->depth--;
	if (r == NULL)
		json_free(n);
	return r;
}

struct jnode *json_parse(const char *text, char *err, size_t errlen)
{
	struct jp jp = {.text = text, .p = text, .err = err, .errlen = errlen};
	struct jnode *n;

	err[0] = '\0';
	n = jp_value(&jp);
	if (n == NULL)
		return NULL;
	jp_space(&jp);
	if (*jp.p != '\0') {
		json_free(n);
		return jp_fail(&jp, "text after the value");
	}
	return n;
}

void json_free(struct jnode *n)
{
	while (n != NULL) {
		struct jnode *next = n->next;
		json_free(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

const struct jnode *json_get(const struct jnode *obj, const char *key)
{
	if (obj == NULL || obj->type != J_OBJ)
		return NULL;
	for (const struct jnode *c = obj->child; c != NULL; c = c->next) {
		if (strcmp(c->key, key) == 0)
			return c;
	}
	return NULL;
}

int json_get_u64(const struct jnode *obj, const char *key, uint64_t *out)
{
	const struct jnode *n = json_get(obj, key);

	if (n == NULL || n->type != J_NUM || !n->is_u64)
		return -1;
	*out = n->u64;
	return 0;
}
