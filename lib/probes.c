/*
 * probes.c - the USDT semaphores (see probes.h). A tracer that attaches to a
 * probe increments its semaphore (the kernel does it for uprobes with a
 * reference counter offset); the library only reads them.
 */
#include "probes.h"

#ifdef WEFT_WITH_PROBES
#define WEFT__DEFINE_SEMA(name) \
	volatile unsigned short WEFT__SEMA(name) __attribute__((section(".probes"))) = 0
WEFT__DEFINE_SEMA(runtime_create);
WEFT__DEFINE_SEMA(runtime_shutdown);
WEFT__DEFINE_SEMA(worker_start);
WEFT__DEFINE_SEMA(worker_stop);
WEFT__DEFINE_SEMA(steal);
WEFT__DEFINE_SEMA(steal_fail);
WEFT__DEFINE_SEMA(park);
WEFT__DEFINE_SEMA(unpark);
WEFT__DEFINE_SEMA(notify);
WEFT__DEFINE_SEMA(overflow);
WEFT__DEFINE_SEMA(maintenance);
WEFT__DEFINE_SEMA(block_in_place);
#else
typedef int weft__probes_disabled; /* keep the translation unit non-empty */
#endif
