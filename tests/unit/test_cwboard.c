/* cwboard: worker 0's CLOSE_WAIT list for the other workers. A post is read back whole, a
 * later post replaces it, a list larger than the board is cut to its capacity, a post that
 * a dead writer left half written (seq odd) is not read, and the next post repairs it, and
 * a reader in another process sees the posts through the shared mapping.
 *
 * cwboard.c is included, not linked, so a test can leave seq odd as a writer killed in the
 * middle of a post would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/cwboard.c"

#include <sys/wait.h>
#include <unistd.h>

static void fill(struct cwboard_rec *v, size_t n, uint64_t base)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (struct cwboard_rec){base + i, (uint32_t)(1000 + i), (uint32_t)i,
					    (int64_t)(base * 10 + i)};
}

static void test_post_and_read(void **state)
{
	struct cwboard *b = cwboard_map(100);
	struct cwboard_rec in[50], *out = NULL;
	size_t cap = 0, n = 99;
	uint64_t gen = 99;

	(void)state;
	assert_non_null(b);
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gen, 0); /* nothing posted yet */
	fill(in, 50, 7);
	assert_int_equal(cwboard_post(b, in, 50), 50);
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(n, 50);
	assert_int_equal(gen, 1);
	assert_memory_equal(out, in, sizeof(in));
	/* The post already read: nothing copied, the caller's copy stands. */
	out[0].cookie = 12345;
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(gen, 1);
	assert_int_equal(n, 50);
	assert_int_equal(out[0].cookie, 12345);
	assert_int_equal(cwboard_post(b, in, 3), 3); /* replaces, not appends */
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(n, 3);
	assert_int_equal(gen, 2);
	assert_int_equal(out[0].cookie, in[0].cookie);
	free(out);
	cwboard_unmap(b);
}

static void test_larger_than_the_board_is_cut(void **state)
{
	struct cwboard *b = cwboard_map(10);
	struct cwboard_rec in[25], *out = NULL;
	size_t cap = 0, n = 0;
	uint64_t gen = 0;

	(void)state;
	fill(in, 25, 1);
	assert_int_equal(cwboard_capacity(b), 10);
	assert_int_equal(cwboard_post(b, in, 25), 10);
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(n, 10);
	assert_memory_equal(out, in, 10 * sizeof(in[0]));
	free(out);
	cwboard_unmap(b);
}

static void test_dead_writer_half_way(void **state)
{
	struct cwboard *b = cwboard_map(10);
	struct cwboard_rec in[4], *out = NULL;
	size_t cap = 0, n = 0;
	uint64_t gen = 0;

	(void)state;
	fill(in, 4, 1);
	cwboard_post(b, in, 4);
	/* A writer killed between its two seq stores. */
	atomic_store(&b->seq, atomic_load(&b->seq) + 1);
	errno = 0;
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), -1);
	assert_int_equal(errno, EAGAIN);
	fill(in, 2, 50); /* its successor's post */
	assert_int_equal(cwboard_post(b, in, 2), 2);
	assert_int_equal(atomic_load(&b->seq) & 1, 0);
	assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, in, 2 * sizeof(in[0]));
	free(out);
	cwboard_unmap(b);
}

static void test_shared_with_a_child(void **state)
{
	struct cwboard *b = cwboard_map(1000);
	struct cwboard_rec in[1000];
	int status;
	pid_t pid;

	(void)state;
	fill(in, 1000, 3);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cwboard_post(b, in, 1000);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		struct cwboard_rec *out = NULL;
		size_t cap = 0, n = 0;
		uint64_t gen = 0;
		assert_int_equal(cwboard_read(b, &out, &cap, &n, &gen), 0);
		assert_int_equal(n, 1000);
		assert_int_equal(gen, 1);
		assert_memory_equal(out, in, sizeof(in));
		free(out);
	}
	cwboard_unmap(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_post_and_read),
	    cmocka_unit_test(test_larger_than_the_board_is_cut),
	    cmocka_unit_test(test_dead_writer_half_way),
	    cmocka_unit_test(test_shared_with_a_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
