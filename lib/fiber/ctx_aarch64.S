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
 *
 * Checked against the AAPCS64 callee-saved set (by reading: no aarch64
 * machine runs this here, see issue 17). Offsets are from the saved sp.
 *
 *   register        saved at      notes
 *   x19-x28         [0]..[72]     stp pairs; x19 carries f into a new fiber
 *   x29 (fp)        [80]          0 in a new frame: the frame chain ends there
 *   x30 (lr)        [88]          `ret` after the restore jumps to it
 *   sp              *save_sp      sp after `sub #176`, the frame's address;
 *                                 16-aligned: it was at entry (AAPCS64) and
 *                                 176 = 11 * 16, so every [sp, #n] is legal
 *                                 with SP alignment checking on
 *   d8-d15          [96]..[152]   low 64 bits of v8-v15, all the PCS keeps;
 *                                 the high halves are caller-saved
 *   FPCR            [160]         rounding mode, FZ, trap enables: they
 *                                 belong to the fiber, as MXCSR's control
 *                                 bits do on x86
 *   (pad)           [168]         keeps the frame a multiple of 16
 *
 * Not saved, and why that is right:
 *  - x0-x17, v0-v7, v16-v31, NZCV, SVE z/p/FFR beyond d8-d15: caller-saved;
 *    the C caller assumes the call clobbers them. x9 is the scratch here.
 *  - x18, the platform register: Linux does not reserve it, and GCC and
 *    Clang treat it as a caller-clobbered temporary, so no caller relies on
 *    it across this call. The switch leaves it untouched: after a switch it
 *    holds whatever the other side had. Builds that do reserve it
 *    (-ffixed-x18, Clang's shadow call stack, where x18 is the per-thread
 *    shadow stack pointer) are not supported: fibers would share the
 *    thread's shadow stack.
 *  - FPSR (cumulative exception flags IOC..IDC, QC): AAPCS64 does not
 *    preserve it across a call ("may have any value on entry"). So FP
 *    exception flags belong to the thread, not the fiber: fetestexcept()
 *    across a suspension point says nothing (a fiber may resume on another
 *    thread). On x86 the SSE flags happen to travel inside MXCSR. If
 *    fiber-local flags are ever wanted, the pad slot [168] can hold FPSR.
 *  - TPIDR_EL0 (TLS base), TPIDR2_EL0 and SME state (PSTATE.SM, ZA): per
 *    thread and not switched. Nothing may keep a thread-local address
 *    across a suspension (fiber.c; weft__ctx() is noinline behind a
 *    compiler barrier so the TLS base is re-read); a fiber must not suspend
 *    in streaming mode or with ZA live or dormant.
 *
 * The first frame (frame_init in fiber.c) matches this layout: sp = 16-
 * aligned top - 176, x19 = f at [0], x29 = 0 at [80], x30 = the trampoline
 * at [88], FPCR of the thread that first polls the fiber at [160], the rest
 * zero. The first switch into it leaves sp = top (16-aligned) and `ret`s
 * into the trampoline, which clears x29 again (as x86 clears rbp), passes
 * x19 in x0 and calls weft__fiber_main with sp 16-aligned, as AAPCS64
 * requires at a call; `brk` stands where x86 has `ud2`.
 *
 * BTI and PAC: this object has no .note.gnu.property, so a build with
 * -mbranch-protection=bti/standard links libweft without the BTI property
 * (ld drops it; -z force-bti would warn): not a fault, but no enforcement.
 * Adding the property would need at most `bti c` at weft__ctx_switch: it
 * is reached only by a direct `bl` (hidden symbol, no PLT) and the
 * trampoline only by `ret`, neither of which BTI checks. pac-ret: this is
 * a leaf and stores lr unsigned; compiled callers sign their own lr against
 * their own sp, which the switch hands back unchanged, and Linux keys are
 * per process, so a fiber resumed on another thread authenticates its
 * frames (unless some thread calls prctl(PR_PAC_RESET_KEYS)). The unsigned
 * lr at [88] of a suspended fiber is a hardening gap, as on x86 without a
 * shadow stack. No CFI here (x86 marks its trampoline .cfi_undefined rip):
 * frame-pointer unwinders stop at x29 = 0, DWARF ones at the missing FDE.
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
