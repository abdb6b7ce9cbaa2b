/*
 * test_barrier.c - weft_barrier (weft/sync.h) through the public headers:
 * rounds of fibers, threads and poll tasks; the leader; arrivals taken
 * back by a time limit, an abort and a cancelled poll entry; rounds wider
 * than one batch of wakes.
 */
#include "../common/wt.h"

#define MS 1000000ull
#define ROUNDS 200

struct round_state {
	struct weft_barrier *b;
	size_t n;
	atomic_int arrived[ROUNDS];
	atomic_int leaders[ROUNDS];
	atomic_int early;          /* a party that passed before its round was full */
	atomic_int errors;
};

static void one_round(struct round_state *s, int r, int rc, bool leader)
{
	if (rc) {
		atomic_fetch_add(&s->errors, 1);
		return;
	}
	if ((size_t)atomic_load(&s->arrived[r]) != s->n)
		atomic_fetch_add(&s->early, 1);
	if (leader)
		atomic_fetch_add(&s->leaders[r], 1);
}

static void *party_fiber(void *arg)
{
	struct round_state *s = arg;
	for (int r = 0; r < ROUNDS; r++) {
		atomic_fetch_add(&s->arrived[r], 1);
		bool leader = false;
		int rc = weft_barrier_wait(s->b, &leader);
		one_round(s, r, rc, leader);
		if (r % 7 == 0)
			weft_yield();
	}
	return NULL;
}

static void *party_thread(void *arg)
{
	struct round_state *s = arg;
	for (int r = 0; r < ROUNDS; r++) {
		atomic_fetch_add(&s->arrived[r], 1);
		bool leader = false;
		int rc = weft_barrier_wait_timeout(s->b, 10000 * MS, &leader);
		one_round(s, r, rc, leader);
	}
	return NULL;
}

struct party_poll { struct round_state *s; struct weft_wait w; int r; bool in; };

static enum weft_poll party_poll_fn(void *state, struct weft_cx *cx)
{
	struct party_poll *p = state;
	while (p->r < ROUNDS) {
		if (!p->in) {
			atomic_fetch_add(&p->s->arrived[p->r], 1);
			p->in = true;
		}
		bool leader = false;
		int rc = weft_barrier_wait_poll(p->s->b, &p->w, cx, &leader);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		one_round(p->s, p->r, rc, leader);
		p->in = false;
		p->r++;
	}
	return WEFT_READY;
}

static void party_poll_drop(void *state) { weft_wait_cancel(&((struct party_poll *)state)->w); }

Test(barrier, rounds_of_fibers_threads_and_a_poll_task, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	static struct round_state s;
	memset(&s, 0, sizeof s);
	s.n = 5;
	cr_assert_eq(weft_barrier_create(s.n, &s.b), 0);
	struct weft_task *f[3], *pt;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_spawn(rt, party_fiber, &s, &f[i]), 0);
	struct party_poll pp = { .s = &s, .w = WEFT_WAIT_INIT };
	cr_assert_eq(weft_spawn_poll(rt, party_poll_fn, &pp, party_poll_drop, &pt), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, party_thread, &s), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_join(f[i], NULL), 0);
	cr_assert_eq(weft_join(pt, NULL), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(atomic_load(&s.errors), 0);
	cr_assert_eq(atomic_load(&s.early), 0, "a party passed before its round was full");
	for (int r = 0; r < ROUNDS; r++)
		cr_assert_eq(atomic_load(&s.leaders[r]), 1, "round %d: %d leaders", r,
			     atomic_load(&s.leaders[r]));
	cr_assert_eq(weft_barrier_destroy(s.b), 0);
	wt_rt_destroy(rt);
}

Test(barrier, a_round_wider_than_a_batch_of_wakes, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	static struct round_state s;
	memset(&s, 0, sizeof s);
	s.n = 41; /* 40 fibers and this thread: 40 entries, three batches */
	cr_assert_eq(weft_barrier_create(s.n, &s.b), 0);
	struct weft_task *f[40];
	for (int i = 0; i < 40; i++)
		cr_assert_eq(weft_spawn(rt, party_fiber, &s, &f[i]), 0);
	party_thread(&s);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(weft_join(f[i], NULL), 0);
	cr_assert_eq(atomic_load(&s.errors), 0);
	cr_assert_eq(atomic_load(&s.early), 0);
	for (int r = 0; r < ROUNDS; r++)
		cr_assert_eq(atomic_load(&s.leaders[r]), 1, "round %d", r);
	cr_assert_eq(weft_barrier_destroy(s.b), 0);
	wt_rt_destroy(rt);
}

static void *wait_once(void *arg)
{
	bool leader = false;
	int rc = weft_barrier_wait(arg, &leader);
	return (void *)(intptr_t)(rc ? rc : leader ? 2 : 1);
}

struct one_poll { struct weft_barrier *b; struct weft_wait w; atomic_int state; };

static enum weft_poll one_poll_fn(void *st, struct weft_cx *cx)
{
	struct one_poll *p = st;
	bool leader;
	int rc = weft_barrier_wait_poll(p->b, &p->w, cx, &leader);
	if (rc == WEFT_PENDING) {
		atomic_store(&p->state, 1);
		return WEFT_PENDING;
	}
	atomic_store(&p->state, rc ? rc : 2);
	return WEFT_READY;
}

static void one_poll_drop(void *st) { weft_wait_cancel(&((struct one_poll *)st)->w); }

Test(barrier, arrivals_given_up_are_taken_back, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_barrier *b;
	cr_assert_eq(weft_barrier_create(2, &b), 0);
	/* a time limit: the second timed waiter must not pair with the first */
	bool leader = true;
	cr_assert_eq(weft_barrier_wait_timeout(b, 20 * MS, &leader), -ETIMEDOUT);
	cr_assert(leader, "*leader untouched on an error");
	cr_assert_eq(weft_barrier_wait_timeout(b, 20 * MS, NULL), -ETIMEDOUT,
		     "the first waiter's arrival was taken back");
	/* an aborted fiber */
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, wait_once, b, &h), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_abort(h), 0);
	void *r;
	int jrc = weft_join(h, &r);
	cr_assert(jrc == -EINTR || jrc == -ECANCELED, "join %d", jrc);
	cr_assert_eq(weft_barrier_wait_timeout(b, 20 * MS, NULL), -ETIMEDOUT,
		     "the aborted fiber's arrival was taken back");
	/* a poll task's entry cancelled by its abort (drop) */
	struct one_poll p = { .b = b, .w = WEFT_WAIT_INIT };
	cr_assert_eq(weft_spawn_poll(rt, one_poll_fn, &p, one_poll_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.state) == 1, WT_LONG_MS));
	cr_assert_eq(weft_barrier_destroy(b), -EBUSY, "a party waits (its entry is linked)");
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_join(h, NULL), -ECANCELED);
	cr_assert_eq(weft_barrier_wait_timeout(b, 20 * MS, NULL), -ETIMEDOUT,
		     "the poll task's arrival was taken back");
	/* and the barrier still works: a fiber and this thread pass together */
	cr_assert_eq(weft_spawn(rt, wait_once, b, &h), 0);
	leader = false;
	cr_assert_eq(weft_barrier_wait(b, &leader), 0);
	cr_assert_eq(weft_join(h, &r), 0);
	cr_assert_eq((int)leader + ((intptr_t)r == 2), 1, "one leader of the two");
	cr_assert_eq(weft_barrier_destroy(b), 0);
	wt_rt_destroy(rt);
}

Test(barrier, one_party_and_errors, .timeout = WT_TMO(10))
{
	struct weft_barrier *b;
	cr_assert_eq(weft_barrier_create(0, &b), -EINVAL);
	cr_assert_eq(weft_barrier_create(1, NULL), -EINVAL);
	cr_assert_eq(weft_barrier_create(1, &b), 0);
	for (int i = 0; i < 3; i++) {
		bool leader = false;
		cr_assert_eq(weft_barrier_wait(b, &leader), 0);
		cr_assert(leader, "a party of one leads every round");
	}
	cr_assert_eq(weft_barrier_wait(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_barrier_wait_timeout(NULL, 0, NULL), -EINVAL);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_barrier_wait_poll(b, &w, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_barrier_destroy(NULL), -EINVAL);
	cr_assert_eq(weft_barrier_destroy(b), 0);
}

/* ------------------------------------- a time limit as the round closes */

/* A timed wait whose time runs out just as its round is released, its
 * entry behind a first batch of 16 wakes: it passed (0), or it took its
 * arrival back (-ETIMEDOUT) and the round waits for it - never
 * -ETIMEDOUT with the arrival counted (found by a review: the release
 * was looked at, then the entry cancelled in a second lock hold, and a
 * round closing in between was missed; every run of 20 failed within
 * 1 s). Round by round: 16 fibers arrive first, the test thread arrives
 * with a 100 us limit, a releaser thread arrives near that deadline,
 * steering its offset towards the moment the wait gives up. */
#define TR_FILL 16
static struct weft_barrier *tr_b;
static atomic_long tr_fill_arrivals, tr_r_done, tr_dl, tr_offset = 40000;
static atomic_int tr_quit;

static void *tr_filler(void *arg)
{
	(void)arg;
	for (;;) {
		atomic_fetch_add(&tr_fill_arrivals, 1);
		if (weft_barrier_wait(tr_b, NULL))
			return NULL; /* cancelled by shutdown */
	}
}

static void *tr_releaser(void *arg)
{
	(void)arg;
	uint64_t seed = 12345;
	for (long r = 0; !atomic_load(&tr_quit); r++) {
		long dl;
		while ((dl = atomic_load(&tr_dl)) == 0)
			if (atomic_load(&tr_quit))
				return NULL;
		atomic_store(&tr_dl, 0);
		uint64_t at = (uint64_t)dl + (uint64_t)atomic_load(&tr_offset) + wt_rand(&seed) % 2000;
		while (wt_now_ns() < at)
			;
		weft_barrier_wait(tr_b, NULL);
		atomic_store(&tr_r_done, r + 1);
	}
	return NULL;
}

Test(barrier, a_timeout_as_the_round_closes_is_either_passed_or_taken_back,
     .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_barrier_create(TR_FILL + 2, &tr_b), 0);
	struct weft_task *f[TR_FILL];
	for (int i = 0; i < TR_FILL; i++)
		cr_assert_eq(weft_spawn(rt, tr_filler, NULL, &f[i]), 0);
	pthread_t rth;
	cr_assert_eq(pthread_create(&rth, NULL, tr_releaser, NULL), 0);
	long ok = 0, tmo = 0, r;
	uint64_t end = wt_now_ns() + 3000000000ull;
	for (r = 0; wt_now_ns() < end; r++) {
		while (atomic_load(&tr_fill_arrivals) < TR_FILL * (r + 1))
			;
		usleep(50); /* the fillers link first */
		atomic_store(&tr_dl, (long)(wt_now_ns() + 100000));
		int rc = weft_barrier_wait_timeout(tr_b, 100000, NULL);
		if (rc == 0) {
			ok++;
			atomic_fetch_add(&tr_offset, 300);
			while (atomic_load(&tr_r_done) < r + 1)
				;
			continue;
		}
		cr_assert_eq(rc, -ETIMEDOUT);
		tmo++;
		if (atomic_load(&tr_offset) > 500)
			atomic_fetch_sub(&tr_offset, 300);
		/* taken back: the round cannot close without a new arrival */
		uint64_t until = wt_now_ns() + 400000;
		while (atomic_load(&tr_r_done) < r + 1 && wt_now_ns() < until)
			;
		cr_assert_lt(atomic_load(&tr_r_done), r + 1,
			     "round %ld: -ETIMEDOUT, yet the round was released without this "
			     "party arriving again (%ld passed, %ld timed out before)", r, ok, tmo - 1);
		cr_assert_eq(weft_barrier_wait(tr_b, NULL), 0);
		while (atomic_load(&tr_r_done) < r + 1)
			;
	}
	cr_log_info("%ld rounds: %ld passed, %ld timed out and arrived again", r, ok, tmo);
	atomic_store(&tr_quit, 1);
	pthread_join(rth, NULL);
	cr_assert_eq(weft_runtime_shutdown(rt, 1000000000ull), 0);
	for (int i = 0; i < TR_FILL; i++)
		weft_join(f[i], NULL);
	cr_assert_eq(weft_barrier_destroy(tr_b), 0);
	wt_rt_destroy(rt);
}
