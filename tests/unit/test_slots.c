/* slots: the workers' shared figures. Counting and reading, retiring a dead worker (its
 * open connections become lost), a worker that died in either half of an update (the
 * latch keeps a whole copy: exact figures, lost_unknown for the first half), and a real
 * writer process killed with SIGKILL while readers check accepted = closed + lost + open.
 *
 * slots.c is included, not linked, so a test can stop a writer half-way through an update
 * as a SIGKILL would (latch_flip, then a torn copy). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/slots.c"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t closed_sum(const struct stats *st)
{
	uint64_t n = 0;

	for (int r = 0; r < CLOSE_NREASONS; r++)
		n += st->closed[r];
	return n;
}

/* A worker's counts after `acc` accepts and `eof` + `rst` closes. */
static void counts(struct stats *st, uint64_t acc, uint64_t eof, uint64_t rst)
{
	memset(st, 0, sizeof(*st));
	st->accepted = acc;
	st->closed[CLOSE_EOF] = eof;
	st->closed[CLOSE_RESET] = rst;
	st->open = acc - eof - rst;
}

static struct stats *new_stats(void)
{
	struct stats *st = calloc(1, sizeof(*st));

	assert_non_null(st);
	return st;
}

static void test_count_read_sum(void **state)
{
	struct slots *s = slots_map(2);
	struct slot_figures *f = malloc(sizeof(*f));
	struct stats *st = new_stats(), *total = new_stats();
	struct watchdog_fds fds = {.valid = 1};
	struct watchdog_close_wait cw = {0};
	int unread;

	(void)state;
	assert_non_null(s);
	assert_non_null(f);
	assert_int_equal(slots_count_of(s), 2);
	assert_int_equal(slots_read(s, 0, f), 0);
	assert_int_equal(f->live, 0);
	counts(st, 10, 3, 1);
	st->bytes_in = 99; /* not an accept/close figure: only published at the census */
	slots_count(s, 1, st);
	assert_int_equal(slots_read(s, 1, f), 0);
	assert_int_equal(f->live, 1);
	assert_int_equal(f->stats.accepted, 10);
	assert_int_equal(f->stats.open, 6);
	assert_int_equal(f->stats.closed[CLOSE_RESET], 1);
	assert_int_equal(f->stats.bytes_in, 0);
	slots_publish(s, 1, st, NULL, NULL);
	assert_int_equal(slots_read(s, 1, f), 0);
	assert_int_equal(f->stats.bytes_in, 99);
	/* Worker 0 sums the others: its own figures are its business. */
	assert_int_equal(slots_sum(s, 0, total, &fds, &cw, &unread), 1);
	assert_int_equal(unread, 0);
	assert_int_equal(total->accepted, 10);
	assert_int_equal(total->open, 6);
	assert_int_equal(slots_read(s, 7, f), -1);
	free(total);
	free(st);
	free(f);
	slots_unmap(s);
}

static void test_retire_counts_open_as_lost(void **state)
{
	struct slots *s = slots_map(1);
	struct slot_figures *f = malloc(sizeof(*f));
	struct stats *st = new_stats(), *total = new_stats();
	struct watchdog_fds fds = {0};
	struct watchdog_close_wait cw = {0};
	int unread;

	(void)state;
	counts(st, 10, 3, 1);
	slots_publish(s, 0, st, NULL, NULL);
	assert_int_equal(slots_retire(s, 0), 0);
	assert_int_equal(slots_read(s, 0, f), 0);
	assert_int_equal(f->live, 0);
	assert_int_equal(f->stats.accepted, 0);
	assert_int_equal(f->retired.accepted, 10);
	assert_int_equal(f->retired.lost, 6);
	assert_int_equal(f->retired.lost_unknown, 0);
	/* The next worker in the slot counts from zero; the sum keeps both lives. */
	counts(st, 5, 5, 0);
	slots_count(s, 0, st);
	assert_int_equal(slots_sum(s, -1, total, &fds, &cw, &unread), 1);
	assert_int_equal(total->accepted, 15);
	assert_int_equal(total->lost, 6);
	assert_int_equal(total->open, 0);
	assert_int_equal(total->accepted, closed_sum(total) + total->lost + total->open);
	free(total);
	free(st);
	free(f);
	slots_unmap(s);
}

/* The worker was killed after the first flip of an update, while writing the first copy:
 * seq is odd, that copy is garbage. The figures before the update are retired, whole,
 * the slot is not live, and the death is counted as lost_unknown. */
static void test_death_in_first_half(void **state)
{
	struct slots *s = slots_map(1);
	struct slot_figures *f = malloc(sizeof(*f)), *torn;
	struct stats *st = new_stats();

	(void)state;
	counts(st, 10, 3, 1);
	slots_count(s, 0, st);
	torn = latch_flip(&s->slot[0]);
	memset(torn, 0xa5, sizeof(*torn));
	assert_int_equal(atomic_load(&s->slot[0].seq) & 1, 1);
	assert_int_equal(slots_retire(s, 0), 1);
	assert_int_equal(atomic_load(&s->slot[0].seq) & 1, 0);
	assert_int_equal(slots_read(s, 0, f), 0);
	assert_int_equal(f->live, 0);
	assert_int_equal(f->stats.open, 0);
	assert_int_equal(f->retired.accepted, 10);
	assert_int_equal(closed_sum(&f->retired), 4);
	assert_int_equal(f->retired.lost, 6);
	assert_int_equal(f->retired.lost_unknown, 1);
	/* Both copies are whole again: a reader at either parity sees the same. */
	assert_memory_equal(&s->slot[0].v[0], &s->slot[0].v[1], sizeof(struct slot_figures));
	free(st);
	free(f);
	slots_unmap(s);
}

/* Killed in the second half: the copy readers use already holds the new figures. */
static void test_death_in_second_half(void **state)
{
	struct slots *s = slots_map(1);
	struct slot_figures *f = malloc(sizeof(*f)), *copy;
	struct stats *st = new_stats();

	(void)state;
	counts(st, 10, 3, 1);
	slots_count(s, 0, st);
	copy = latch_flip(&s->slot[0]);
	copy->stats.accepted = 11; /* one more accept, written whole */
	copy->stats.open = 7;
	copy = latch_flip(&s->slot[0]);
	memset(copy, 0x5a, sizeof(*copy));
	assert_int_equal(slots_retire(s, 0), 0);
	assert_int_equal(slots_read(s, 0, f), 0);
	assert_int_equal(f->live, 0);
	assert_int_equal(f->retired.accepted, 11);
	assert_int_equal(f->retired.lost, 7);
	assert_int_equal(f->retired.lost_unknown, 0);
	free(st);
	free(f);
	slots_unmap(s);
}

/* A writer process accepts and closes in bursts of 64; the test reads its slot while it
 * runs (every copy: accepted = closed + open), kills it with SIGKILL, retires it, and
 * finds accepted = closed + lost with lost = what it had open. */
static void test_killed_writer(void **state)
{
	struct slots *s = slots_map(1);
	struct slot_figures *f = malloc(sizeof(*f));
	pid_t pid;
	int status;
	uint64_t reads = 0;
	time_t deadline = time(NULL) + 20;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stats *st = new_stats();

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
		for (uint64_t i = 0;; i++) {
			if (i % 3 == 2) {
				st->closed[i % 2 ? CLOSE_EOF : CLOSE_RESET]++;
				st->open--;
			} else {
				st->accepted++;
				st->open++;
			}
			slots_count(s, 0, st);
			if (i % 64 == 0)
				usleep(1); /* bursts, as a worker's accept batches: readers get
					      through */
		}
	}
	while (reads < 20000) {
		assert_true(time(NULL) < deadline);
		if (slots_read(s, 0, f) < 0 || !f->live)
			continue;
		assert_int_equal(f->stats.accepted, closed_sum(&f->stats) + f->stats.open);
		reads++;
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	slots_retire(s, 0);
	assert_int_equal(slots_read(s, 0, f), 0);
	print_message(
	    "killed writer: accepted %llu, closed %llu, lost %llu, lost_unknown %llu\n",
	    (unsigned long long)f->retired.accepted, (unsigned long long)closed_sum(&f->retired),
	    (unsigned long long)f->retired.lost, (unsigned long long)f->retired.lost_unknown);
	assert_int_equal(f->live, 0);
	assert_true(f->retired.lost > 0);
	assert_int_equal(f->retired.accepted, closed_sum(&f->retired) + f->retired.lost);
	free(f);
	slots_unmap(s);
}

/* A mapping of another layout (another build's, handed on across exec) is neither read
 * nor written: a reader counts it as unread instead of misreading it. */
static void test_other_layout_ignored(void **state)
{
	struct slots *s = slots_map(1);
	struct slot_figures *f = malloc(sizeof(*f));
	struct stats *st = new_stats(), *total = new_stats();
	struct watchdog_fds fds = {0};
	struct watchdog_close_wait cw = {0};
	int unread;

	(void)state;
	assert_non_null(s);
	assert_non_null(f);
	assert_true(s->layout >> 32 == SLOTS_LAYOUT_VERSION);
	assert_true((s->layout & 0xffffffffu) == sizeof(struct slot));
	counts(st, 5, 1, 0);
	slots_count(s, 0, st);
	s->layout ^= (uint64_t)1 << 32; /* the next version's */
	assert_int_equal(slots_read(s, 0, f), -1);
	assert_int_equal(slots_sum(s, -1, total, &fds, &cw, &unread), 0);
	assert_int_equal(unread, 1);
	assert_int_equal(total->accepted, 0);
	counts(st, 9, 1, 0);
	slots_count(s, 0, st); /* ignored */
	s->layout ^= (uint64_t)1 << 32;
	assert_int_equal(slots_read(s, 0, f), 0);
	assert_int_equal(f->stats.accepted, 5);
	free(f);
	free(st);
	free(total);
	slots_unmap(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_read_sum),
	    cmocka_unit_test(test_retire_counts_open_as_lost),
	    cmocka_unit_test(test_death_in_first_half),
	    cmocka_unit_test(test_death_in_second_half),
	    cmocka_unit_test(test_killed_writer),
	    cmocka_unit_test(test_other_layout_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
