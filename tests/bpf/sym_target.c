/*
 * sym_target.c - a real process for test_sym: prints code addresses it
 * knows the source of, then waits to be symbolized from outside.
 *
 *   sym_target  ->  "RET LINE HERE WEFT_CREATE LONG\n", then sleeps until killed
 *
 * RET is the return address of a call made on source line LINE of this
 * file (in main); HERE is the address of here(); WEFT_CREATE that of
 * weft_runtime_create in the shared libweft; LONG that of a function whose
 * name (211 bytes) is longer than schedtop's buffer for it.
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

int main(void)
{
	void *ra = here(); int line = __LINE__;
	printf("%#llx %d %#llx %#llx %#llx\n", (unsigned long long)(uintptr_t)ra, line,
	       (unsigned long long)(uintptr_t)&here,
	       (unsigned long long)(uintptr_t)&weft_runtime_create,
	       (unsigned long long)(uintptr_t)&a_function_name_longer_than_the_symbolizers_buffer_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx);
	fflush(stdout);
	for (;;)
		pause();
}
