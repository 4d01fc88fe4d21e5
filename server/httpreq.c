/* httpreq: a strict, allocation-free HTTP/1.x request-head parser (see httpreq.h). */
#include "httpreq.h"

#include <string.h>

/* tchar (RFC 9110 5.6.2): the characters of a method and a field name. */
static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A field value: visible ASCII, space, tab and obs-text (bytes >= 0x80). */
static int is_value_char(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* The next line [p, end of line): its length without CR LF in *n, the start of the next
 * line in *next. 0 when the line is not complete yet (no LF), -1 for a CR not followed by
 * LF. */
static int next_line(const char *p, const char *end, size_t *n, const char **next)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	const char *cr = memchr(p, '\r', (size_t)((lf != NULL ? lf : end) - p));

	if (cr != NULL && (cr + 1 < end || lf != NULL) && cr + 1 != lf)
		return -1;
	if (lf == NULL)
		return 0;
	*n = (size_t)((cr != NULL ? cr : lf) - p);
	*next = lf + 1;
	return 1;
}

/* Checks a request-line prefix of n bytes; complete says whether it is the whole line. */
static enum httpreq_status parse_request_line(const char *s, size_t n, int complete,
					      struct httpreq *r)
{
	size_t i = 0, t;

	for (; i < n && is_tchar((unsigned char)s[i]); i++)
		;
	if ((i < n && s[i] != ' ') || (i == 0 && n > 0))
		return HTTPREQ_BAD;
	r->method = s;
	r->method_len = i;
	if (i++ >= n)
		return complete ? HTTPREQ_BAD : HTTPREQ_INCOMPLETE;
	for (t = i; i < n && s[i] > 0x20 && s[i] < 0x7f; i++)
		;
	if ((i < n && s[i] != ' ') || (i == t && i < n))
		return HTTPREQ_BAD;
	r->path = s + t;
	r->path_len = i - t;
	for (size_t q = t; q < i; q++)
		if (s[q] == '?') {
			r->path_len = q - t;
			break;
		}
	if (i++ >= n)
		return complete ? HTTPREQ_BAD : HTTPREQ_INCOMPLETE;
	/* "HTTP/" DIGIT "." DIGIT, checked as far as it goes. */
	static const char pat[] = "HTTP/0.0";
	if (n - i > 8)
		return HTTPREQ_BAD;
	for (size_t k = 0; i + k < n; k++) {
		char c = s[i + k];
		int ok = pat[k] == '0' ? (c >= '0' && c <= '9') : c == pat[k];
		if (!ok)
			return HTTPREQ_BAD;
	}
	if (n - i < 8)
		return complete ? HTTPREQ_BAD : HTTPREQ_INCOMPLETE;
	r->major = s[i + 5] - '0';
	r->minor = s[i + 7] - '0';
	return HTTPREQ_DONE;
}

/* Checks a field-line prefix of n bytes. */
static int field_line_ok(const char *s, size_t n, int complete)
{
	size_t i = 0;

	for (; i < n && is_tchar((unsigned char)s[i]); i++)
		;
	if (i == n)
		return !complete; /* a name without ':' yet */
	if (i == 0 || s[i] != ':')
		return 0;
	for (i++; i < n; i++)
		if (!is_value_char((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The last, incomplete line: checked as far as it goes ("\r" alone is fine). */
static enum httpreq_status parse_partial(const char *p, const char *end, int first,
					 struct httpreq *r)
{
	size_t n = (size_t)(end - p);

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (first)
		return parse_request_line(p, n, 0, r) == HTTPREQ_BAD ? HTTPREQ_BAD
								     : HTTPREQ_INCOMPLETE;
	return field_line_ok(p, n, 0) ? HTTPREQ_INCOMPLETE : HTTPREQ_BAD;
}

enum httpreq_status httpreq_parse(const char *buf, size_t len, struct httpreq *r)
{
	const char *p = buf, *end = buf + len, *next;
	size_t n;
	int rc;

	memset(r, 0, sizeof(*r));
	for (int first = 1;; first = 0) {
		rc = next_line(p, end, &n, &next);
		if (rc < 0)
			return HTTPREQ_BAD;
		if (rc == 0)
			return parse_partial(p, end, first, r);
		if (first && parse_request_line(p, n, 1, r) != HTTPREQ_DONE)
			return HTTPREQ_BAD;
		if (!first && n == 0) {
			r->head_len = (size_t)(next - buf);
			return HTTPREQ_DONE;
		}
		if (!first && !field_line_ok(p, n, 1))
			return HTTPREQ_BAD;
		p = next;
	}
}

int httpreq_method_is(const struct httpreq *r, const char *s)
{
	return strlen(s) == r->method_len && memcmp(r->method, s, r->method_len) == 0;
}

int httpreq_path_is(const struct httpreq *r, const char *s)
{
	return strlen(s) == r->path_len && memcmp(r->path, s, r->path_len) == 0;
}
