/*
 * sym_target.c - a real process for test_sym: prints code addresses it
 * knows the source of, then waits to be symbolized from outside.
 *
 *   sym_target  ->  "RET LINE HERE WEFT_CREATE LONG DEEP\n", then sleeps until killed
 *
 * RET is the return address of a call made on source line LINE of this
 * file (in main); HERE is the address of here(); WEFT_CREATE that of
 * weft_runtime_create in the shared libweft; LONG that of a function whose
 * name (211 bytes) is longer than schedtop's buffer for it; DEEP that of
 * deep_fn, whose source path (#line, at the end) is longer than schedtop's
 * buffer for it (sym_deep_file.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <weft/weft.h>

__attribute__((noinline)) static void *here(void)
{
	void *ra = __builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
	return ra;
}

__attribute__((noinline)) void a_function_name_longer_than_the_symbolizers_buffer_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx(void)
{
	__asm__ volatile("" ::: "memory");
}

void deep_fn(void);

int main(void)
{
	void *ra = here(); int line = __LINE__;
	printf("%#llx %d %#llx %#llx %#llx %#llx\n", (unsigned long long)(uintptr_t)ra, line,
	       (unsigned long long)(uintptr_t)&here,
	       (unsigned long long)(uintptr_t)&weft_runtime_create,
	       (unsigned long long)(uintptr_t)&a_function_name_longer_than_the_symbolizers_buffer_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,
	       (unsigned long long)(uintptr_t)&deep_fn);
	fflush(stdout);
	for (;;)
		pause();
}

/* a source path of 344 bytes (a deep build tree): its file name must come
 * out whole */
#line 6 "/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/a_directory_name_of_forty_characters_xxx/sym_deep_file.c"
__attribute__((noinline)) void deep_fn(void)
{
	__asm__ volatile("" ::: "memory");
}
