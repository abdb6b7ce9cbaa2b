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
/* The --no-bpf view on a terminal: 0 if terminfo can clear stdout's screen
 * (then tui_clear does), else -1 with the reason in why. */
int tui_check_clear(char *why, size_t n);
void tui_clear(void);
int tui_run(struct mon *m, struct stall *st, int pid, double interval, long count, int pidfd,
	    volatile sig_atomic_t *exiting);

#endif
