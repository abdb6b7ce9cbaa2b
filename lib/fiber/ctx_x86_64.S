/*
 * ctx_x86_64.S - fiber context switch for x86_64 (System V ABI).
 *
 * void weft__ctx_switch(void **save_sp, void *new_sp)
 *   Pushes the callee-saved registers (rbp, rbx, r12-r15) and the FP
 *   control words (MXCSR, x87 control word) on the current stack, stores
 *   the stack pointer in *save_sp, loads new_sp and pops the same frame
 *   from there. Everything else is caller-saved, so the C compiler has
 *   already spilled it around the call.
 *
 * Frame, from the saved stack pointer upward (64 bytes):
 *   [0] MXCSR (4) + x87 CW (2) + pad   [8] r15  [16] r14  [24] r13
 *   [32] r12  [40] rbx  [48] rbp  [56] return address
 *
 * weft__fiber_trampoline is the return address of a fresh fiber's frame:
 * it calls weft__fiber_main(r12) and never returns.
 */
	.text
	.globl	weft__ctx_switch
	.hidden	weft__ctx_switch
	.type	weft__ctx_switch, @function
weft__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	weft__ctx_switch, .-weft__ctx_switch

	.globl	weft__fiber_trampoline
	.hidden	weft__fiber_trampoline
	.type	weft__fiber_trampoline, @function
weft__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	call	weft__fiber_main
	ud2
	.cfi_endproc
	.size	weft__fiber_trampoline, .-weft__fiber_trampoline

	.section .note.GNU-stack,"",@progbits
