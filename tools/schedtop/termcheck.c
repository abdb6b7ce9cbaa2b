/*
 * termcheck.c - can the live view run here? Apart from tui.c because
 * <term.h> defines macros (lines, columns...) that clash with its names.
 */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <term.h>
#include <unistd.h>

#include "tui.h"

int tui_check_terminal(char *why, size_t n)
{
	int err = 0;
	if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
		snprintf(why, n, "schedtop: the live view needs a terminal; use --batch");
		return -1;
	}
	if (setupterm(NULL, STDOUT_FILENO, &err) != OK) {
		const char *term = getenv("TERM");
		snprintf(why, n, "schedtop: cannot use the terminal%s%s%s; use --batch",
			 term ? " (TERM=" : "", term ? term : "", term ? ")" : "");
		return -1;
	}
	return 0;
}

