/* json: a small writer and a small reader, enough for the load client's own results.
 *
 * The writer appends to a growing buffer; an allocation failure is remembered and
 * reported once by jw_finish(). The reader builds a tree of the whole document (objects
 * keep their keys in order) and remembers where each value starts in the text, so a
 * histogram can be handed to hist_from_json() as it was written. Numbers that are whole
 * and fit in uint64_t are kept exactly.
 *
 * Why not a JSON library from Debian (jansson, json-c): a histogram's "sum" is an exact
 * 128-bit integer (common/hist.c), written as a JSON number in every result since the
 * first, and merge must stay exact for those files too. Measured on Debian 12 with
 * {"sum":36893488147419103232} (2^65): json-c 0.16's json_tokener_parse reads it as the int
 * 18446744073709551615 (clamped, no error), so a merge would be silently wrong; jansson
 * 2.14's json_loads refuses it ("too big integer"), and refuses any count of 2^63 or more,
 * so older results would no longer merge. Writing the sum as a string instead would break
 * `load-client merge` of the results already on disk. This reader hands the histogram's
 * own text to hist_from_json, which reads the 128-bit sum exactly (test_hist_sum_above_u64
 * in tests/unit/test_client_report.c). */
#ifndef TEARDOWN_JSON_H
#define TEARDOWN_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JW_DEPTH 16

struct jw {
	char *buf;
	size_t len, cap;
	int failed;
	int depth;
	int count[JW_DEPTH]; /* values written at each depth (for commas) */
};

void jw_init(struct jw *w);
void jw_free(struct jw *w);
/* key is NULL inside arrays and at the top. */
void jw_obj(struct jw *w, const char *key);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_i64(struct jw *w, const char *key, int64_t v);
void jw_double(struct jw *w, const char *key, double v);
void jw_str(struct jw *w, const char *key, const char *s);
void jw_bool(struct jw *w, const char *key, int v);
/* A value already in JSON form (a histogram from hist_to_json). */
void jw_raw(struct jw *w, const char *key, const char *json);
/* The text, NUL-terminated, or NULL when an allocation failed. */
const char *jw_finish(struct jw *w);

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode {
	enum jtype type;
	char *key;    /* member name inside an object */
	char *str;    /* J_STR */
	double num;   /* J_NUM, J_BOOL (0/1) */
	uint64_t u64; /* J_NUM when is_u64 */
	int is_u64;
	const char *start;   /* where the value starts in the parsed text */
	struct jnode *child; /* J_ARR, J_OBJ: first element */
	struct jnode *next;
};

/* The tree of a whole document (trailing garbage is an error), or NULL with a reason
 * ("offset N: ..."). */
struct jnode *json_parse(const char *text, char *err, size_t errlen);
void json_free(struct jnode *n);
/* Member `key` of an object, or NULL. */
const struct jnode *json_get(const struct jnode *obj, const char *key);
/* A whole non-negative number member: 0, or -1 when missing or not such a number. */
int json_get_u64(const struct jnode *obj, const char *key, uint64_t *out);

#endif
