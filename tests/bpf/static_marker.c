/*
 * static_marker.c - a statically linked program (no libweft) that appends
 * its pid to the file argv[1] and exits: schedtop -- CMD must run it once,
 * not once more while looking for its libweft (it used to, through
 * LD_TRACE_LOADED_OBJECTS, which a static program ignores).
 */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	FILE *f = argc > 1 ? fopen(argv[1], "a") : NULL;
	if (f) {
		fprintf(f, "ran %d\n", (int)getpid());
		fclose(f);
	}
	return 0;
}
