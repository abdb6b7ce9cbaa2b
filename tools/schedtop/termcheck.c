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
	const char *term = getenv("TERM");
	if (setupterm(NULL, STDOUT_FILENO, &err) != OK) {
		snprintf(why, n, "schedtop: cannot use the terminal%s%s%s; use --batch",
			 term ? " (TERM=" : "", term ? term : "", term ? ")" : "");
		return -1;
	}
	/* A terminal terminfo knows but that cannot place the cursor (TERM=dumb:
	 * Emacs' shell, some CI consoles; a hardcopy or generic entry):
	 * newterm takes it, and every redraw came out as a stream of blank
	 * lines with the footer last, the view never shown (found by a
	 * review). */
	const char *cup = tigetstr("cup");
	if (!cup || cup == (const char *)-1 || tigetflag("hc") > 0 || tigetflag("gn") > 0) {
		snprintf(why, n, "schedtop: the terminal%s%s%s cannot move the cursor, which the "
				 "live view needs; use --batch",
			 term ? " (TERM=" : "", term ? term : "", term ? ")" : "");
		return -1;
	}
	return 0;
}

/* The --no-bpf view on a terminal clears the screen with terminfo's
 * `clear` each interval (it wrote ESC [H ESC [2J whatever the terminal:
 * raw escapes on TERM=dumb, where the live view refuses; found by a
 * review). It reads no keys, so stdin need not be a terminal. */
static const char *clear_str;

int tui_check_clear(char *why, size_t n)
{
	int err = 0;
	const char *term = getenv("TERM");
	if (setupterm(NULL, STDOUT_FILENO, &err) != OK) {
		snprintf(why, n, "schedtop: cannot use the terminal%s%s%s; use --batch",
			 term ? " (TERM=" : "", term ? term : "", term ? ")" : "");
		return -1;
	}
	const char *cl = tigetstr("clear");
	if (!cl || cl == (const char *)-1 || tigetflag("hc") > 0 || tigetflag("gn") > 0) {
		snprintf(why, n, "schedtop: the terminal%s%s%s cannot clear the screen, which the "
				 "live view needs; use --batch",
			 term ? " (TERM=" : "", term ? term : "", term ? ")" : "");
		return -1;
	}
	clear_str = cl;
	return 0;
}

void tui_clear(void)
{
	if (clear_str)
		putp(clear_str); /* through stdout, with the terminal's padding */
}
