/*
 * x86-64 code generation (System V). eBPF registers live in host registers:
 *   r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8, r6 rbx, r7 r13, r8 r14, r9 r15, r10 rbp;
 * r12 holds the run (struct fovm_run), r9-r11 are scratch. Code layout: the bounds-check
 * trampoline, the error exit and epilogue, then the entry and the program. Every jump,
 * local call and exit subtracts the instructions run since the last such point from
 * run->jit_rem, as the interpreter counts; memory accesses not based on r10 (whose offsets
 * the verifier proved) are checked inline against the context, the stack frame and the last
 * region, then by fovm_jit_mem.
 */
#include <stddef.h>

#include "jit.h"

#if FOVM_HAVE_JIT && defined(__x86_64__)

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
static const uint8_t REG[EBPF_NREGS] = {RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP};
enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7, CC_S = 8, CC_NS = 9,
       CC_L = 12, CC_GE = 13, CC_LE = 14, CC_G = 15 };
#define RUNF(field) ((int32_t)offsetof(struct fovm_run, field))

/* Fixed code at the start of the buffer. */
struct x86 {
    struct fovm_jit *j;
    size_t tramp_mem, err_exit, epilogue;
    uint32_t seg; /* first instruction not yet subtracted from the budget */
};

static void b(struct fovm_jit *j, unsigned v) { j->buf[j->len++] = (uint8_t)v; }
static void d32(struct fovm_jit *j, uint32_t v)
{
    b(j, v), b(j, v >> 8), b(j, v >> 16), b(j, v >> 24);
}
static void rex(struct fovm_jit *j, int w, int r, int bb, int force)
{
    unsigned v = 0x40u | (w ? 8u : 0u) | (((unsigned)r >> 3) & 1u) << 2 | (((unsigned)bb >> 3) & 1u);
    if (v != 0x40u || force)
        b(j, v);
}
/* op with ModRM register-direct: reg field and rm field. */
static void rr(struct fovm_jit *j, int w, unsigned op, int reg, int rm)
{
    rex(j, w, reg, rm, 0);
    b(j, op);
    b(j, 0xc0u | (unsigned)(reg & 7) << 3 | (unsigned)(rm & 7));
}
static void rr0f(struct fovm_jit *j, int w, unsigned op, int reg, int rm, int force)
{
    rex(j, w, reg, rm, force);
    b(j, 0x0f);
    b(j, op);
    b(j, 0xc0u | (unsigned)(reg & 7) << 3 | (unsigned)(rm & 7));
}
static void modrm_mem(struct fovm_jit *j, int reg, int base, int32_t disp)
{
    unsigned r = (unsigned)(reg & 7) << 3, m = (unsigned)(base & 7);
    if (disp == 0 && m != 5) {
        b(j, r | m);
    } else if (disp >= -128 && disp <= 127) {
        b(j, 0x40u | r | m);
    } else {
        b(j, 0x80u | r | m);
    }
    if (m == 4)
        b(j, 0x24);
    if (disp != 0 || m == 5) {
        if (disp >= -128 && disp <= 127)
            b(j, (unsigned)disp & 0xffu);
        else
            d32(j, (uint32_t)disp);
    }
}
/* op with a memory operand [base + disp]; pfx66 for 16-bit; opcodes 0F xx when two. */
static void mem(struct fovm_jit *j, int w, int pfx66, unsigned op, int reg, int base, int32_t disp,
                int force)
{
    if (pfx66)
        b(j, 0x66);
    rex(j, w, reg, base, force);
    if (op > 0xff)
        b(j, op >> 8);
    b(j, op & 0xffu);
    modrm_mem(j, reg, base, disp);
}
static void push(struct fovm_jit *j, int r)
{
    if (r >= 8)
        b(j, 0x41);
    b(j, 0x50u + (unsigned)(r & 7));
}
static void pop(struct fovm_jit *j, int r)
{
    if (r >= 8)
        b(j, 0x41);
    b(j, 0x58u + (unsigned)(r & 7));
}
static void mov_imm32(struct fovm_jit *j, int r, uint32_t v) /* zero-extends */
{
    rex(j, 0, 0, r, 0);
    b(j, 0xb8u + (unsigned)(r & 7));
    d32(j, v);
}
static void mov_imm64(struct fovm_jit *j, int r, uint64_t v)
{
    rex(j, 1, 0, r, 0);
    b(j, 0xb8u + (unsigned)(r & 7));
    d32(j, (uint32_t)v);
    d32(j, (uint32_t)(v >> 32));
}
static void mov_simm(struct fovm_jit *j, int r, int32_t v) /* sign-extends */
{
    rex(j, 1, 0, r, 0);
    b(j, 0xc7);
    b(j, 0xc0u | (unsigned)(r & 7));
    d32(j, (uint32_t)v);
}
/* op r/m, imm32 (group 1: /0 add, /1 or, /4 and, /5 sub, /6 xor, /7 cmp) */
static void alu_imm(struct fovm_jit *j, int w, unsigned ext, int r, int32_t imm)
{
    if (imm >= -128 && imm <= 127) {
        rex(j, w, 0, r, 0);
        b(j, 0x83);
        b(j, 0xc0u | ext << 3 | (unsigned)(r & 7));
        b(j, (unsigned)imm & 0xffu);
        return;
    }
    rex(j, w, 0, r, 0);
    b(j, 0x81);
    b(j, 0xc0u | ext << 3 | (unsigned)(r & 7));
    d32(j, (uint32_t)imm);
}
/* group 1 on a qword of the run */
static void alu_run(struct fovm_jit *j, unsigned ext, int32_t field, int32_t imm)
{
    if (imm >= -128 && imm <= 127) {
        mem(j, 1, 0, 0x83, (int)ext, R12, field, 0);
        b(j, (unsigned)imm & 0xffu);
    } else {
        mem(j, 1, 0, 0x81, (int)ext, R12, field, 0);
        d32(j, (uint32_t)imm);
    }
}
static size_t jcc8(struct fovm_jit *j, int cc)
{
    b(j, 0x70u + (unsigned)cc);
    b(j, 0);
    return j->len - 1;
}
static size_t jmp8(struct fovm_jit *j)
{
    b(j, 0xeb);
    b(j, 0);
    return j->len - 1;
}
static void here8(struct fovm_jit *j, size_t at)
{
    size_t d = j->len - (at + 1);
    if (d > 127)
        j->failed = 1;
    j->buf[at] = (uint8_t)d;
}
static size_t jcc32(struct fovm_jit *j, int cc)
{
    b(j, 0x0f);
    b(j, 0x80u + (unsigned)cc);
    d32(j, 0);
    return j->len - 4;
}
static size_t jmp32(struct fovm_jit *j)
{
    b(j, 0xe9);
    d32(j, 0);
    return j->len - 4;
}
static void here32(struct fovm_jit *j, size_t at)
{
    uint32_t v = (uint32_t)(j->len - (at + 4));
    fovm_copy(j->buf + at, &v, 4);
}
static void to32(struct fovm_jit *j, size_t at, size_t target)
{
    uint32_t v = (uint32_t)(int32_t)((int64_t)target - (int64_t)(at + 4));
    fovm_copy(j->buf + at, &v, 4);
}
static void jmp_to(struct fovm_jit *j, size_t target) { to32(j, jmp32(j), target); }
static void call_to(struct fovm_jit *j, size_t target)
{
    b(j, 0xe8);
    d32(j, 0);
    to32(j, j->len - 4, target);
}
/* call a C function: rax = its address, call rax */
#define CALL_C(j, fn)                                                                             \
    do {                                                                                          \
        __typeof__(&(fn)) p_ = &(fn);                                                             \
        uint64_t a_;                                                                              \
        fovm_copy(&a_, &p_, sizeof a_);                                                           \
        mov_imm64((j), RAX, a_);                                                                  \
        b((j), 0xff);                                                                             \
        b((j), 0xd0);                                                                             \
    } while (0)

#include "jit_x86_ops.h"

#endif /* FOVM_HAVE_JIT && __x86_64__ */
