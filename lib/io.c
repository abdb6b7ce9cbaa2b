/*
 * io.c - readiness registrations for file descriptors (epoll, edge-triggered).
 */
#include "runtime.h"

void weft__io_ready(struct weft_runtime *rt, void *reg, uint32_t events)
{
	(void)rt;
	(void)reg;
	(void)events;
}
