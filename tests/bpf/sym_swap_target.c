/*
 * sym_swap_target.c - a target that lies to a symbolizer about its files
 * (test_sym_files). It loads LIB, prints the address of its function
 * sym_decoy_fn, and with LINK given deletes LIB and leaves a symlink
 * "LIB (deleted)" -> LINK in its place: the name /proc/PID/maps now shows
 * for the mapping. Then it sleeps until killed.
 *
 *   sym_swap_target LIB [LINK]  ->  "ADDR\n"
 *
 * Or, with --reload, a plugin host that reloads a plugin rebuilt in
 * place: loads LIB, prints the address of FN_A, waits for a line on its
 * stdin, then unloads LIB, renames NEW over it (another file, same path)
 * and loads it again, and prints the address of FN_B.
 *
 *   sym_swap_target LIB --reload NEW FN_A FN_B  ->  "ADDR_A\n" ... "ADDR_B\n"
 *
 * test_sym_files runs it as nobody, and in a mount namespace of its own.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sym_swap_target LIB [LINK]\n");
		return 2;
	}
	if (argc == 6 && !strcmp(argv[2], "--reload")) {
		void *h = dlopen(argv[1], RTLD_NOW);
		void *fn = h ? dlsym(h, argv[4]) : NULL;
		char line[16];
		if (!fn) {
			fprintf(stderr, "sym_swap_target: %s\n", dlerror());
			return 1;
		}
		printf("%#llx\n", (unsigned long long)(uintptr_t)fn);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		dlclose(h);
		if (rename(argv[3], argv[1])) {
			perror("sym_swap_target: rename");
			return 1;
		}
		h = dlopen(argv[1], RTLD_NOW);
		fn = h ? dlsym(h, argv[5]) : NULL;
		if (!fn) {
			fprintf(stderr, "sym_swap_target: %s\n", dlerror());
			return 1;
		}
		printf("%#llx\n", (unsigned long long)(uintptr_t)fn);
		fflush(stdout);
		for (;;)
			pause();
	}
	void *h = dlopen(argv[1], RTLD_NOW);
	void *fn = h ? dlsym(h, "sym_decoy_fn") : NULL;
	if (!fn) {
		fprintf(stderr, "sym_swap_target: %s\n", dlerror());
		return 1;
	}
	if (argc > 2) {
		char link[4096];
		snprintf(link, sizeof(link), "%s (deleted)", argv[1]);
		if (unlink(argv[1]) || symlink(argv[2], link)) {
			perror("sym_swap_target");
			return 1;
		}
	}
	printf("%#llx\n", (unsigned long long)(uintptr_t)fn);
	fflush(stdout);
	for (;;)
		pause();
}
