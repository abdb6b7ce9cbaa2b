/*
 * die.h - weft__die: report a broken internal invariant and abort
 * (error.c). On its own so that the files whose core logic also builds into
 * the weak-memory harnesses (queue.c, task_state.h, park_core.h; see
 * tests/harness/) need not pull in runtime.h.
 */
#ifndef WEFT_DIE_H
#define WEFT_DIE_H

__attribute__((noreturn, format(printf, 4, 5)))
void weft__die_at(const char *file, int line, const char *func, const char *fmt, ...);
#define weft__die(...) weft__die_at(__FILE__, __LINE__, __func__, __VA_ARGS__)

/* A message to stderr ("weft: ..." and a newline) that raises no SIGPIPE
 * when stderr is a pipe nobody reads (signal.h: weft's writes never do),
 * and changes nothing else: errno and a SIGPIPE already pending stay. */
__attribute__((format(printf, 1, 2)))
void weft__warn(const char *fmt, ...);

#endif /* WEFT_DIE_H */
