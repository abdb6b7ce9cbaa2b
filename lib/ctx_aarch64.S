/*
 * ctx_aarch64.S - fiber context switch for AArch64 (AAPCS64).
 *
 * void weft__ctx_switch(void **save_sp, void *new_sp)
 *   Saves the callee-saved registers x19-x28, fp (x29), lr (x30), the low
 *   halves d8-d15 and FPCR in a 176-byte frame on the current stack, stores
 *   sp in *save_sp, switches to new_sp and restores the same frame; `ret`
 *   then jumps to the restored lr.
 *
 * Frame (176 bytes): [0] x19,x20 [16] x21,x22 [32] x23,x24 [48] x25,x26
 *   [64] x27,x28 [80] x29,x30 [96] d8,d9 [112] d10,d11 [128] d12,d13
 *   [144] d14,d15 [160] fpcr [168] pad
 *
 * weft__fiber_trampoline is the lr of a fresh fiber's frame: it calls
 * weft__fiber_main(x19) and never returns.
 */
	.text
	.globl	weft__ctx_switch
	.hidden	weft__ctx_switch
	.type	weft__ctx_switch, %function
weft__ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	weft__ctx_switch, .-weft__ctx_switch

	.globl	weft__fiber_trampoline
	.hidden	weft__fiber_trampoline
	.type	weft__fiber_trampoline, %function
weft__fiber_trampoline:
	mov	x29, #0
	mov	x0, x19
	bl	weft__fiber_main
	brk	#0
	.size	weft__fiber_trampoline, .-weft__fiber_trampoline

	.section .note.GNU-stack,"",%progbits
