/*
 * tui.h - schedtop's live view (ncurses): workers, steal matrix, histograms.
 */
#ifndef SCHEDTOP_TUI_H
#define SCHEDTOP_TUI_H

#include <signal.h>
#include <stddef.h>
#include "mon.h"

/* Runs until q, Ctrl-C (*exiting), `count` refreshes or the target's exit
 * (pidfd readable; -1 to poll /proc). Returns the exit code. */
struct stall;
/* 0 if the live view can run here (a terminal stdin/stdout that terminfo
 * knows), else -1 with the reason in why: checked before anything is
 * attached or launched. */
int tui_check_terminal(char *why, size_t n);
int tui_run(struct mon *m, struct stall *st, int pid, double interval, long count, int pidfd,
	    volatile sig_atomic_t *exiting);

#endif
