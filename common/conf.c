#include "conf.h"
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UTF8_BOM "\xef\xbb\xbf"

/* Where a key's value came from (struct conf.is_set): the command line wins over a file
 * whatever the order in which the program reads them. */
enum { SRC_NONE = 0, SRC_FILE = 1, SRC_CMDLINE = 2 };

/* A parsed value before it is stored: bool, enum, int, duration and size use i. */
union conf_val {
	int64_t i;
	char s[CONF_STR_MAX];
};

struct conf_unit {
	const char *name;
	int64_t mult;
};

/* Largest unit first: the formatter picks the first one that divides the value. */
static const struct conf_unit dur_units[] = {
    {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}, {NULL, 0}};
static const struct conf_unit size_units[] = {{"m", 1048576}, {"k", 1024}, {"", 1}, {NULL, 0}};
/* Sizes also accept the upper-case suffixes operators often write. */
static const struct conf_unit size_suffixes[] = {{"m", 1048576}, {"M", 1048576}, {"k", 1024},
						 {"K", 1024},	 {"", 1},	 {NULL, 0}};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int conf_init(struct conf *c, const struct conf_key *keys, size_t nkeys, void *obj)
{
	size_t n = nkeys ? nkeys : 1;

	memset(c, 0, sizeof(*c));
	c->keys = keys;
	c->nkeys = nkeys;
	c->obj = obj;
	c->is_set = calloc(n, 1);
	c->in_file = calloc(n, 1);
	c->first_line = calloc(n, sizeof(int));
	c->where = calloc(n, sizeof(*c->where));
	c->seq = calloc(n, sizeof(*c->seq));
	if (c->is_set == NULL || c->in_file == NULL || c->first_line == NULL || c->where == NULL ||
	    c->seq == NULL) {
		conf_free(c);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void conf_free(struct conf *c)
{
	free(c->is_set);
	free(c->in_file);
	free(c->first_line);
	free(c->where);
	free(c->seq);
	c->where = NULL;
	c->seq = NULL;
	c->is_set = NULL;
	c->in_file = NULL;
	c->first_line = NULL;
}

const struct conf_key *conf_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nkeys; i++) {
		if (strcmp(c->keys[i].name, name) == 0)
			return &c->keys[i];
	}
	return NULL;
}

int conf_was_set(const struct conf *c, const char *name)
{
	const struct conf_key *k = conf_find(c, name);

	return k != NULL && c->is_set[k - c->keys] != SRC_NONE;
}

const char *conf_where(const struct conf *c, const char *name, unsigned *seq)
{
	const struct conf_key *k = conf_find(c, name);
	size_t i = k != NULL ? (size_t)(k - c->keys) : 0;

	if (seq != NULL)
		*seq = k != NULL ? c->seq[i] : 0;
	return k != NULL && c->where[i][0] != '\0' ? c->where[i] : NULL;
}

/* ---- formatting ---- */

static void format_scaled(int64_t v, const struct conf_unit *units, char *buf, size_t len)
{
	if (v == 0) {
		snprintf(buf, len, "0");
		return;
	}
	for (const struct conf_unit *u = units; u->name != NULL; u++) {
		if (v % u->mult == 0) {
			snprintf(buf, len, "%" PRId64 "%s", v / u->mult, u->name);
			return;
		}
	}
}

/* A number of the key's type (int, duration, size) in the key's own syntax. */
static void format_number(const struct conf_key *k, int64_t v, char *buf, size_t len)
{
	if (k->type == CONF_DURATION)
		format_scaled(v, dur_units, buf, len);
	else if (k->type == CONF_PERCENT)
		snprintf(buf, len, "%" PRId64 "%%", v);
	else if (k->type == CONF_SIZE)
		format_scaled(v, size_units, buf, len);
	else
		snprintf(buf, len, "%" PRId64, v);
}

static const char *enum_name(const struct conf_key *k, int64_t idx)
{
	for (int64_t i = 0; k->choices != NULL && k->choices[i] != NULL; i++) {
		if (i == idx)
			return k->choices[i];
	}
	return "?";
}

void conf_format_value(const struct conf_key *k, const void *obj, char *buf, size_t len)
{
	const char *p = (const char *)obj + k->offset;
	int64_t v;
	int b;

	switch (k->type) {
	case CONF_BOOL:
	case CONF_ENUM:
		memcpy(&b, p, sizeof(b));
		if (k->type == CONF_BOOL)
			snprintf(buf, len, "%s", b ? "yes" : "no");
		else
			snprintf(buf, len, "%s", enum_name(k, b));
		break;
	case CONF_STRING:
		snprintf(buf, len, "%.*s", CONF_STR_MAX - 1, p);
		break;
	default:
		memcpy(&v, p, sizeof(v));
		format_number(k, v, buf, len);
		break;
	}
}

/* ---- parsing one value ---- */

static int has_range(const struct conf_key *k)
{
	return k->min != 0 || k->max != 0;
}

/* "must be between 1s and 2h", or "too large" for a key without a range. */
static int range_error(const struct conf_key *k, char *reason, size_t len)
{
	char lo[32], hi[32];

	if (!has_range(k)) {
		format_number(k, INT64_MAX, hi, sizeof(hi));
		return fail(reason, len, "too large (max %s)", hi);
	}
	format_number(k, k->min, lo, sizeof(lo));
	format_number(k, k->max, hi, sizeof(hi));
	return fail(reason, len, "must be %sbetween %s and %s",
		    (k->flags & CONF_F_ZERO_OFF) ? "0 (off) or " : "", lo, hi);
}

static int check_range(const struct conf_key *k, int64_t v, char *reason, size_t len)
{
	if (v == 0 && (k->flags & CONF_F_ZERO_OFF))
		return 0;
	if (has_range(k) && (v < k->min || v > k->max))
		return range_error(k, reason, len);
	return 0;
}

/* The leading decimal integer of s, strictly: no '+', a '-' only when the key allows
 * negative values (min < 0), at least one digit. *end points past the digits. */
static int scan_int(const struct conf_key *k, const char *s, int64_t *out, char **end, char *reason,
		    size_t len)
{
	const char *d = s + (*s == '-');

	if (*s == '+')
		return fail(reason, len, "must not have a '+' sign");
	if (*s == '-' && k->min >= 0)
		return fail(reason, len, "must not be negative");
	if (*d < '0' || *d > '9')
		return fail(reason, len, "not a number: \"%s\"", s);
	errno = 0;
	*out = strtoll(s, end, 10);
	if (errno == ERANGE)
		return range_error(k, reason, len);
	if (errno != 0 || *end == s)
		return fail(reason, len, "not a number: \"%s\"", s);
	return 0;
}

static int parse_int(const struct conf_key *k, const char *s, int64_t *out, char *reason,
		     size_t len)
{
	char *end;

	if (scan_int(k, s, out, &end, reason, len) < 0)
		return -1;
	if (*end != '\0')
		return fail(reason, len, "trailing junk \"%s\" after the number", end);
	return check_range(k, *out, reason, len);
}

/* A key the kernel takes in whole seconds: no hint of a smaller unit, which it refuses too. */
static int whole_seconds_error(char *reason, size_t len)
{
	return fail(reason, len, "must be whole seconds (1s, 2s)");
}

static int unit_error(const struct conf_key *k, const char *suffix, char *reason, size_t len)
{
	if ((k->flags & CONF_F_WHOLE_SECONDS) && *suffix == '.')
		return whole_seconds_error(reason, len);
	if (k->type == CONF_DURATION && *suffix == '.')
		return fail(reason, len,
			    "must be a whole number: use a smaller unit "
			    "(1500ms, not 1.5s)");
	if (*suffix == '.')
		return fail(reason, len,
			    "must be a whole number: use a smaller unit "
			    "(1536, not 1.5k)");
	if (k->type == CONF_DURATION)
		return fail(reason, len, "unknown unit \"%s\" (use ms, s, m or h)", suffix);
	return fail(reason, len, "unknown size suffix \"%s\" (use k or m, or plain bytes)", suffix);
}

static const struct conf_unit *find_unit(const struct conf_unit *u, const char *name)
{
	for (; u->name != NULL; u++) {
		if (strcmp(u->name, name) == 0)
			return u;
	}
	return NULL;
}

/* NUMBER UNIT for durations (a bare 0 is allowed) and sizes (no suffix = bytes). */
static int parse_scaled(const struct conf_key *k, const char *s, int64_t *out, char *reason,
			size_t len)
{
	const struct conf_unit *u;
	int64_t n, mult = 1;
	char *end;

	if (scan_int(k, s, &n, &end, reason, len) < 0)
		return -1;
	if (k->type == CONF_DURATION && *end == '\0') {
		if (n != 0)
			return fail(reason, len, "needs a unit (ms, s, m or h), e.g. %" PRId64 "s",
				    n);
	} else {
		u = find_unit(k->type == CONF_DURATION ? dur_units : size_suffixes, end);
		if (u == NULL)
			return unit_error(k, end, reason, len);
		mult = u->mult;
	}
	if (n > INT64_MAX / mult || n < INT64_MIN / mult)
		return range_error(k, reason, len);
	*out = n * mult;
	if ((k->flags & CONF_F_WHOLE_SECONDS) && *out % 1000 != 0)
		return whole_seconds_error(reason, len);
	return check_range(k, *out, reason, len);
}

/* NUMBER% in whole percent: the sign is required, since a bare 10 could as well be meant
 * as a fraction (0.10) as a percentage. */
static int parse_percent(const struct conf_key *k, const char *s, int64_t *out, char *reason,
			 size_t len)
{
	char *end;

	if (scan_int(k, s, out, &end, reason, len) < 0)
		return -1;
	if (*end == '\0')
		return fail(reason, len, "needs a %% sign, e.g. %" PRId64 "%%", *out);
	if (*end == '.')
		return fail(reason, len, "must be a whole percentage (10%%, not 10.5%%)");
	if (strcmp(end, "%") != 0)
		return fail(reason, len, "trailing junk \"%s\" after the number (expected %%)",
			    end);
	return check_range(k, *out, reason, len);
}

static int parse_choice(const struct conf_key *k, const char *s, int64_t *out, char *reason,
			size_t len)
{
	char list[CONF_ERR_MAX / 2] = "";
	size_t used = 0;

	for (int64_t i = 0; k->choices != NULL && k->choices[i] != NULL; i++) {
		if (strcmp(s, k->choices[i]) == 0) {
			*out = i;
			return 0;
		}
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", k->choices[i]);
	}
	return fail(reason, len, "\"%.40s\" is not one of %s", s, list);
}

static int parse_string(const char *s, char *out, char *reason, size_t len)
{
	size_t n = strlen(s);

	if (n > CONF_STR_MAX - 1)
		return fail(reason, len, "too long (max %d bytes)", CONF_STR_MAX - 1);
	/* Quotes are not syntax here; taking them into the value would be a silent surprise. */
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0])
		return fail(reason, len, "write the value without quotes");
	memcpy(out, s, n + 1);
	return 0;
}

/* CONF_F_ADDRESS: ":PORT" becomes "127.0.0.1:PORT" in place; the result must parse and
 * resolve now, not at bind time, where the error would have lost its place. */
static int check_address(char *s, char *reason, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char buf[CONF_STR_MAX + 16];

	if (s[0] == ':') {
		snprintf(buf, sizeof(buf), "127.0.0.1%s", s);
		if (strlen(buf) > CONF_STR_MAX - 1)
			return fail(reason, len, "too long (max %d bytes)", CONF_STR_MAX - 1);
		memcpy(s, buf, strlen(buf) + 1);
	}
	if (strncmp(s, "[]", 2) == 0)
		return fail(reason, len, "empty host (every address: 0.0.0.0:PORT or [::]:PORT)");
	return sock_parse_hostport(s, &ss, &sl, reason, len);
}

static int parse_typed(const struct conf_key *k, const char *s, union conf_val *v, char *reason,
		       size_t len)
{
	if (*s == '\0')
		return fail(reason, len, "empty value");
	if (k->type != CONF_STRING && strpbrk(s, " \t") != NULL)
		return fail(reason, len, "spaces inside a value are not allowed");
	switch (k->type) {
	case CONF_BOOL:
		if (strcmp(s, "yes") != 0 && strcmp(s, "no") != 0)
			return fail(reason, len, "must be yes or no");
		v->i = strcmp(s, "yes") == 0;
		return 0;
	case CONF_INT:
		return parse_int(k, s, &v->i, reason, len);
	case CONF_DURATION:
	case CONF_SIZE:
		return parse_scaled(k, s, &v->i, reason, len);
	case CONF_STRING:
		if (parse_string(s, v->s, reason, len) < 0)
			return -1;
		return (k->flags & CONF_F_ADDRESS) ? check_address(v->s, reason, len) : 0;
	case CONF_ENUM:
		return parse_choice(k, s, &v->i, reason, len);
	case CONF_PERCENT:
		return parse_percent(k, s, &v->i, reason, len);
	}
	return fail(reason, len, "unknown type %d in the key table", (int)k->type);
}

static void store(const struct conf_key *k, void *obj, const union conf_val *v)
{
	char *p = (char *)obj + k->offset;
	int b = (int)v->i;

	if (k->type == CONF_BOOL || k->type == CONF_ENUM)
		memcpy(p, &b, sizeof(b));
	else if (k->type == CONF_STRING)
		memcpy(p, v->s, strlen(v->s) + 1);
	else
		memcpy(p, &v->i, sizeof(v->i));
}

int conf_parse_value(const struct conf_key *k, void *obj, const char *val, char *reason, size_t len)
{
	union conf_val v;

	if (parse_typed(k, val, &v, reason, len) < 0)
		return -1;
	store(k, obj, &v);
	return 0;
}

/* ---- lines, files, --set ---- */

/* Length of the valid UTF-8 sequence at s (non-ASCII lead byte), or 0 when invalid:
 * overlong forms, surrogates and code points above U+10FFFF are invalid too. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A config line is text: no NUL, no control bytes but tab, valid UTF-8. */
static int check_text(const char *p, size_t n, char *reason, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;

	for (size_t i = 0; i < n; i++) {
		size_t seq = 1;

		if (s[i] == 0)
			return fail(reason, len, "NUL byte at column %zu (not a text file?)",
				    i + 1);
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return fail(reason, len, "control byte 0x%02x at column %zu", s[i], i + 1);
		if (s[i] >= 0x80 && (seq = utf8_len(s + i, n - i)) == 0)
			return fail(reason, len,
				    "invalid UTF-8 byte 0x%02x at column %zu (not a text file?)",
				    s[i], i + 1);
		i += seq - 1;
	}
	return 0;
}

/* A code point that would be invisible or act on the terminal when printed: C1 controls,
 * and the format characters that hide or reorder text (zero-width spaces and joiners,
 * bidirectional marks, embeddings, overrides and isolates, the line and paragraph
 * separators, word joiners, the byte order mark U+FEFF, interlinear annotations). */
static int invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb);
}

static uint32_t utf8_decode(const unsigned char *s, size_t len)
{
	uint32_t cp = s[0] & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);

	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

size_t conf_escape(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), used = 0;

	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < n;) {
		size_t seq = s[i] >= 0x80 ? utf8_len(s + i, n - i) : 1;
		int esc = s[i] < 0x20 || s[i] == 0x7f || seq == 0 ||
			  (seq > 1 && invisible(utf8_decode(s + i, seq)));
		size_t take = seq ? seq : 1, need = s[i] == '\\' ? 2 : esc ? 4 * take : take;

		if (used + need > outlen - 1)
			break; /* cut before a whole unit, never inside an escape or a character */
		if (s[i] == '\\') {
			memcpy(out + used, "\\\\", 2);
		} else if (esc) {
			for (size_t j = 0; j < take; j++)
				snprintf(out + used + 4 * j, 5, "\\x%02X", s[i + j]);
		} else {
			memcpy(out + used, s + i, take);
		}
		used += need;
		i += take;
	}
	out[used] = '\0';
	return used;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	return s;
}

static void strip_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

/* Sets one key from a file line (line > 0) or from --set (line == 0); pre is the error
 * prefix ("FILE:LINE" or "--set:POS"). */
static int conf_assign(struct conf *c, const char *pre, const char *key, const char *val, int line,
		       char *err, size_t errlen)
{
	const struct conf_key *k = conf_find(c, key);
	char reason[CONF_ERR_MAX];
	union conf_val v;
	size_t i;

	if (k == NULL && strncmp(key, UTF8_BOM, strlen(UTF8_BOM)) == 0 && line == 1)
		return fail(err, errlen,
			    "%s: %s: unknown key (the file starts with a UTF-8 byte order mark: "
			    "save it without one)",
			    pre, key);
	if (k == NULL)
		return fail(err, errlen, "%s: %s: unknown key", pre, key);
	i = (size_t)(k - c->keys);
	if (line > 0 && c->in_file[i])
		return fail(err, errlen, "%s: %s: duplicate key, first set on line %d", pre, key,
			    c->first_line[i]);
	if (parse_typed(k, val, &v, reason, sizeof(reason)) < 0)
		return fail(err, errlen, "%s: %s: %s", pre, key, reason);
	if (line > 0) {
		c->in_file[i] = 1;
		c->first_line[i] = line;
		if (c->is_set[i] == SRC_CMDLINE)
			return 0;
	}
	store(k, c->obj, &v);
	c->is_set[i] = line > 0 ? SRC_FILE : SRC_CMDLINE;
	snprintf(c->where[i], sizeof(c->where[i]), "%s", pre);
	c->seq[i] = ++c->next_seq;
	return 0;
}

/* Splits "key = value" (already checked text, no comment) and assigns it. */
static int conf_split_assign(struct conf *c, const char *pre, char *text, int line, char *err,
			     size_t errlen)
{
	char *eq = strchr(text, '=');
	char *key;

	if (eq == NULL)
		return fail(err, errlen, "%s: missing '=' (expected key = value)", pre);
	*eq = '\0';
	key = trim(text);
	if (*key == '\0')
		return fail(err, errlen, "%s: missing key before '='", pre);
	return conf_assign(c, pre, key, trim(eq + 1), line, err, errlen);
}

static int conf_parse_line(struct conf *c, const char *name, int line, const char *p, size_t n,
			   char *err, size_t errlen)
{
	char pre[CONF_ERR_MAX], reason[CONF_ERR_MAX], text[CONF_LINE_MAX];
	char *s;

	snprintf(pre, sizeof(pre), "%s:%d", name, line);
	if (n > 0 && p[n - 1] == '\r') /* CRLF */
		n--;
	if (n > CONF_LINE_MAX - 1)
		return fail(err, errlen, "%s: line too long (more than %d bytes)", pre,
			    CONF_LINE_MAX - 1);
	if (check_text(p, n, reason, sizeof(reason)) < 0)
		return fail(err, errlen, "%s: %s", pre, reason);
	memcpy(text, p, n);
	text[n] = '\0';
	strip_comment(text);
	s = trim(text);
	if (*s == '\0')
		return 0;
	return conf_split_assign(c, pre, s, line, err, errlen);
}

static int parse_buf(struct conf *c, const char *name, const char *buf, size_t len, char *err,
		     size_t errlen)
{
	size_t pos = 0;
	int line = 0;

	memset(c->in_file, 0, c->nkeys);
	memset(c->first_line, 0, c->nkeys * sizeof(int));
	while (pos < len) {
		const char *p = buf + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - p) : len - pos;

		pos += n + (nl != NULL);
		if (conf_parse_line(c, name, ++line, p, n, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int conf_parse_buf(struct conf *c, const char *name, const char *buf, size_t len, char *err,
		   size_t errlen)
{
	char raw[CONF_ERR_MAX];

	if (parse_buf(c, name, buf, len, raw, sizeof(raw)) == 0)
		return 0;
	conf_escape(raw, err, errlen);
	return -1;
}

/* Reads at most max + 1 bytes of a regular file into a malloc'd buffer (one byte more than
 * allowed tells "too large" from "exactly max"). -1 with errno. */
static int read_bounded(int fd, size_t max, char **out, size_t *outlen)
{
	size_t cap = 0, len = 0;
	char *buf = NULL, *nbuf;
	ssize_t r;
	int e;

	while (len <= max) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > max + 1)
				cap = max + 1;
			if ((nbuf = realloc(buf, cap)) == NULL)
				goto fail;
			buf = nbuf;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	*out = buf;
	*outlen = len;
	return 0;
fail:
	e = errno;
	free(buf);
	errno = e;
	return -1;
}

static const char *file_type_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a plain file";
}

/* A config file is a regular file: a device (/dev/zero, a tty) or a FIFO would make the
 * start wait or grow without end. O_NONBLOCK: opening a FIFO for reading blocks until a
 * writer appears, and a device may block in open; O_NOCTTY: a terminal named by -c must not
 * become the controlling terminal. Regular files ignore O_NONBLOCK, so reads stay whole.
 * The fd is returned open for reading, or -1 with the reason in err. */
static int open_regular(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, "%s: fstat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, "%s: not a regular file (%s): a config file must be one",
			    path, file_type_name(st.st_mode));
	}
	return fd;
}

static int parse_file(struct conf *c, const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int fd, r;

	fd = open_regular(path, err, errlen);
	if (fd < 0)
		return -1;
	if (read_bounded(fd, CONF_FILE_MAX, &buf, &len) < 0) {
		r = errno;
		close(fd);
		return fail(err, errlen, "%s: cannot read: %s", path, strerror(r));
	}
	close(fd);
	if (len > CONF_FILE_MAX)
		r = fail(err, errlen, "%s: larger than %d MiB: not a config file", path,
			 CONF_FILE_MAX >> 20);
	else
		r = parse_buf(c, path, buf, len, err, errlen);
	free(buf);
	return r;
}

int conf_parse_file(struct conf *c, const char *path, char *err, size_t errlen)
{
	char raw[CONF_ERR_MAX];

	if (parse_file(c, path, raw, sizeof(raw)) == 0)
		return 0;
	conf_escape(raw, err, errlen);
	return -1;
}

int conf_set_arg(struct conf *c, const char *kv, int pos, char *err, size_t errlen)
{
	char pre[32];

	snprintf(pre, sizeof(pre), "--set:%d", pos);
	return conf_set_arg_as(c, kv, pre, err, errlen);
}

static int set_arg(struct conf *c, const char *kv, const char *pre, char *err, size_t errlen)
{
	char reason[CONF_ERR_MAX], text[CONF_LINE_MAX];
	size_t n = strlen(kv);
	if (n > CONF_LINE_MAX - 1)
		return fail(err, errlen, "%s: too long (more than %d bytes)", pre,
			    CONF_LINE_MAX - 1);
	if (check_text(kv, n, reason, sizeof(reason)) < 0)
		return fail(err, errlen, "%s: %s", pre, reason);
	memcpy(text, kv, n + 1);
	if (strchr(text, '=') == NULL)
		return fail(err, errlen, "%s: missing '=' in \"%s\" (expected key=value)", pre,
			    text);
	return conf_split_assign(c, pre, text, 0, err, errlen);
}

int conf_set_arg_as(struct conf *c, const char *kv, const char *pre, char *err, size_t errlen)
{
	char raw[CONF_ERR_MAX];

	if (set_arg(c, kv, pre, raw, sizeof(raw)) == 0)
		return 0;
	conf_escape(raw, err, errlen);
	return -1;
}

int conf_apply_defaults(struct conf *c, int mode, char *err, size_t errlen)
{
	char reason[CONF_ERR_MAX];
	union conf_val v;

	if (mode < 0 || mode >= CONF_MODES)
		return fail(err, errlen, "mode %d out of range (0..%d)", mode, CONF_MODES - 1);
	for (size_t i = 0; i < c->nkeys; i++) {
		const struct conf_key *k = &c->keys[i];
		const char *def = k->def[mode] != NULL ? k->def[mode] : k->def[0];

		if (c->is_set[i] != SRC_NONE || def == NULL)
			continue;
		if (parse_typed(k, def, &v, reason, sizeof(reason)) < 0)
			return fail(err, errlen, "%s: bad default \"%s\" for mode %d: %s", k->name,
				    def, mode, reason);
		store(k, c->obj, &v);
	}
	return 0;
}
