/*
 * fuzz_opts.c - weft_runtime_opts with random sizes, contents and tails.
 *
 * The input is laid out as: 2 bytes of `sz` (0 .. sizeof + 63), then the
 * bytes of the struct (and of the tail past the known fields). The options
 * are placed in a heap block of exactly max(sz, sizeof(size_t)) bytes, so
 * AddressSanitizer catches any read past `sz`. Pointer fields inside `sz`
 * cannot hold arbitrary bytes (the contract is a valid pointer or NULL):
 * the fuzzer's bytes pick one of a few valid values for each instead
 * (NULL, a good prefix, an empty one, one too long; NULL or a counting
 * hook). A valid worker count is capped at 4 to keep runs fast, and an
 * io_driver of io_uring is made epoll (whether the kernel allows io_uring
 * is not for this model; test_io_driver covers it).
 *
 * Checked: weft_runtime_create returns exactly what the documented rules
 * predict (-EINVAL for sz below `workers`, a non-zero byte past the known
 * fields, or a value out of range; otherwise 0); on success a task runs and
 * joins, the hooks run once per worker at start and at stop, and
 * weft_runtime_destroy returns 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "fuzz_check.h"

typedef struct weft_runtime_opts opts_t;
#define KNOWN sizeof(opts_t)
#define FIELD_IN(f, sz) (offsetof(opts_t, f) + sizeof(((opts_t *)0)->f) <= (sz))

static atomic_int starts, stops;
static void on_start(void *arg, unsigned w) { (void)arg; (void)w; atomic_fetch_add(&starts, 1); }
static void on_stop(void *arg, unsigned w) { (void)arg; (void)w; atomic_fetch_add(&stops, 1); }

static enum weft_poll ready(void *state, struct weft_cx *cx)
{
	weft_cx_set_result(cx, state);
	return WEFT_READY;
}

static const char *const prefixes[] = { NULL, "fz", "", "abcdefghijkl", "abcdefghijk" };

/* What read_opts must decide, from the documented rules. */
#define FLD(f) { offsetof(opts_t, f), sizeof(((opts_t *)0)->f) }

/* The library refuses a size that ends inside a field (no older header can
 * produce one); sizes in padding or at a field's end are fine. */
static bool splits_a_field(size_t sz)
{
	static const struct { size_t off, len; } f[] = {
		FLD(sz), FLD(workers), FLD(event_interval), FLD(global_queue_interval),
		FLD(disable_lifo_slot), FLD(rng_seed), FLD(thread_name_prefix),
		FLD(on_thread_start), FLD(on_thread_stop), FLD(hook_arg), FLD(fiber_stack_size),
		FLD(max_blocking_threads), FLD(blocking_keep_alive_ns), FLD(stall_threshold_ns),
		FLD(io_driver),
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (sz > f[i].off && sz < f[i].off + f[i].len)
			return true;
	return false;
}

static int expect(const unsigned char *buf, size_t sz)
{
	if (sz < offsetof(opts_t, workers))
		return -EINVAL;
	if (splits_a_field(sz))
		return -EINVAL;
	for (size_t i = KNOWN; i < sz; i++)
		if (buf[i])
			return -EINVAL;
	opts_t o;
	memset(&o, 0, sizeof(o));
	memcpy(&o, buf, sz < KNOWN ? sz : KNOWN);
	if (o.workers < 0 || o.workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (o.event_interval > 1000000 || o.global_queue_interval > 1000000)
		return -EINVAL;
	if (o.max_blocking_threads > 65536)
		return -EINVAL;
	if (o.stall_threshold_ns &&
	    (o.stall_threshold_ns < 1000000ull || o.stall_threshold_ns > 60000000000ull))
		return -EINVAL;
	if (o.fiber_stack_size &&
	    (o.fiber_stack_size < 16 * 1024 || o.fiber_stack_size > (1024ul << 20)))
		return -EINVAL;
	if (o.io_driver < WEFT_IO_DRIVER_DEFAULT || o.io_driver > WEFT_IO_DRIVER_URING)
		return -EINVAL;
	if (o.thread_name_prefix && (!o.thread_name_prefix[0] || strlen(o.thread_name_prefix) > 11))
		return -EINVAL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t sz = (data[0] | (size_t)data[1] << 8) % (KNOWN + 64);
	/* Sizes ending inside a field are refused by the library (expect()
	 * says so), so any size may be tried. */
	data += 2;
	size -= 2;
	size_t alloc = sz < sizeof(size_t) ? sizeof(size_t) : sz;
	unsigned char *buf = malloc(alloc);
	CHECK(buf);
	memset(buf, 0, alloc);
	memcpy(buf, data, size < alloc ? size : alloc);
	/* Bytes that would be field values the caller cannot legally pass
	 * are replaced by legal ones, chosen by the same bytes. */
	opts_t tmp;
	memset(&tmp, 0, sizeof(tmp));
	memcpy(&tmp, buf, alloc < KNOWN ? alloc : KNOWN);
	if (FIELD_IN(thread_name_prefix, sz))
		tmp.thread_name_prefix = prefixes[(uintptr_t)tmp.thread_name_prefix % 5];
	if (FIELD_IN(on_thread_start, sz))
		tmp.on_thread_start = ((uintptr_t)tmp.on_thread_start & 1) ? on_start : NULL;
	if (FIELD_IN(on_thread_stop, sz))
		tmp.on_thread_stop = ((uintptr_t)tmp.on_thread_stop & 1) ? on_stop : NULL;
	if (FIELD_IN(hook_arg, sz))
		tmp.hook_arg = NULL;
	if (FIELD_IN(workers, sz) && tmp.workers > 4 && tmp.workers <= WEFT_MAX_WORKERS)
		tmp.workers = 1 + tmp.workers % 4;
	/* io_uring's answer depends on the kernel (and sysctls): an asked-for
	 * io_uring becomes epoll, so the expected result does not. Values out
	 * of range stay, for -EINVAL. */
	if (FIELD_IN(io_driver, sz) && tmp.io_driver == WEFT_IO_DRIVER_URING)
		tmp.io_driver = WEFT_IO_DRIVER_EPOLL;
	/* A bool must hold 0 or 1. */
	if (FIELD_IN(disable_lifo_slot, sz))
		memcpy(&tmp.disable_lifo_slot, &(bool){ buf[offsetof(opts_t, disable_lifo_slot)] & 1 }, 1);
	tmp.sz = sz;
	/* Write back only the bytes inside the block; the padding between
	 * fields is whatever the input said (read_opts must not care). */
	memcpy(buf, &tmp, alloc < KNOWN ? alloc : KNOWN);
	if (sz < sizeof(size_t)) {
		/* sz itself is the first field: a caller always passes it whole. */
		memcpy(buf, &sz, sizeof(sz));
	}
	int want = expect(buf, sz);
	bool hooks = FIELD_IN(on_thread_start, sz) && tmp.on_thread_start;
	bool hooks_stop = FIELD_IN(on_thread_stop, sz) && tmp.on_thread_stop;
	atomic_store(&starts, 0);
	atomic_store(&stops, 0);

	struct weft_runtime *rt = (struct weft_runtime *)(uintptr_t)1;
	int rc = weft_runtime_create((const opts_t *)buf, &rt);
	if (rc != want) {
		fprintf(stderr, "fuzz_opts: sz %zu: create returned %d, expected %d\n", sz, rc, want);
		abort();
	}
	if (rc == 0) {
		struct weft_task *t;
		CHECK(weft_spawn_poll(rt, ready, buf, NULL, &t) == 0);
		void *res = NULL;
		CHECK(weft_join(t, &res) == 0 && res == buf);
		unsigned n = FIELD_IN(workers, sz) && tmp.workers ? (unsigned)tmp.workers : 0;
		CHECK(weft_runtime_destroy(rt) == 0);
		if (n) {
			CHECK(!hooks || atomic_load(&starts) == (int)n);
			CHECK(!hooks_stop || atomic_load(&stops) == (int)n);
		}
		CHECK(hooks || atomic_load(&starts) == 0);
	} else {
		CHECK(rt == (struct weft_runtime *)(uintptr_t)1); /* out untouched */
	}
	free(buf);
	return 0;
}
