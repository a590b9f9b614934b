/*
 * The instructions of jit_x86.c, included once by it (kept apart to keep files short).
 */
#ifndef FOVM_JIT_X86_OPS_H
#define FOVM_JIT_X86_OPS_H

#define D(in) REG[EBPF_DST(in)]
#define S(in) REG[EBPF_SRC(in)]

/* ---- budget and exits ---- */

/* Subtracts the instructions [seg, upto) from the budget left. */
static void spend(struct x86 *x, uint32_t upto)
{
    uint32_t k = x->j->pre[upto] - x->j->pre[x->seg];
    if (k)
        alu_run(x->j, 5, RUNF(jit_rem), (int32_t)k);
    x->seg = upto;
}

static void leave(struct x86 *x, int32_t code, uint32_t pc, uint32_t pending)
{
    struct fovm_jit *j = x->j;
    if (code)
        mov_imm32(j, R10, (uint32_t)code);
    mov_imm32(j, R11, pc);
    mov_imm32(j, R9, pending);
    jmp_to(j, x->err_exit);
}

/* After spend(): the budget ran out if what is left went negative. */
static void budget_check(struct x86 *x, uint32_t pc)
{
    size_t ok = jcc8(x->j, CC_NS);
    leave(x, FOVM_JIT_BUDGET, pc, 0);
    here8(x->j, ok);
}

/* eax holds a C function's status: nonzero ends the run with it. */
static void status_check(struct x86 *x, uint32_t pc)
{
    struct fovm_jit *j = x->j;
    size_t ok;
    rr(j, 0, 0x85, RAX, RAX);
    ok = jcc8(j, CC_E);
    rr(j, 0, 0x89, RAX, R10);
    leave(x, 0, pc, j->pre[pc + 1] - j->pre[x->seg]);
    here8(j, ok);
}

/* ---- memory ---- */

/* r11 in [base, base + len) with n bytes to spare: jump to ok (patched by the caller). */
static size_t region(struct fovm_jit *j, int32_t base_f, int32_t len_f, unsigned n)
{
    size_t next, ok;
    rr(j, 1, 0x89, R11, R10);
    mem(j, 1, 0, 0x2b, R10, R12, base_f, 0); /* sub r10, base */
    mem(j, 1, 0, 0x3b, R10, R12, len_f, 0);  /* cmp r10, len */
    next = jcc8(j, CC_AE);
    if (n > 1) {
        alu_imm(j, 1, 0, R10, (int32_t)n);
        mem(j, 1, 0, 0x3b, R10, R12, len_f, 0);
        ok = jcc32(j, CC_BE);
    } else {
        ok = jmp32(j);
    }
    here8(j, next);
    return ok;
}

/* Like region() for a hot region, which a write may use only when it is writable. */
static size_t hot(struct fovm_jit *j, int32_t base_f, int32_t len_f, int32_t w_f, unsigned n,
                  int write)
{
    size_t s1, s2 = 0, ok;
    rr(j, 1, 0x89, R11, R10);
    mem(j, 1, 0, 0x2b, R10, R12, base_f, 0);
    mem(j, 1, 0, 0x3b, R10, R12, len_f, 0);
    s1 = jcc8(j, CC_AE);
    if (n > 1) {
        alu_imm(j, 1, 0, R10, (int32_t)n);
        mem(j, 1, 0, 0x3b, R10, R12, len_f, 0);
        s2 = jcc8(j, CC_A);
    }
    if (write) {
        mem(j, 0, 0, 0x83, 7, R12, w_f, 0);
        b(j, 0);
        ok = jcc32(j, CC_NE);
    } else {
        ok = jmp32(j);
    }
    here8(j, s1);
    if (n > 1)
        here8(j, s2);
    return ok;
}

/* Checks the n bytes at r11: the last two regions (writable for a write; rows policies scan
 * are most of their accesses), the context, the stack frames, then fovm_jit_mem, which ends
 * the run on a fault. */
static void check(struct x86 *x, uint32_t pc, unsigned n, int write)
{
    struct fovm_jit *j = x->j;
    size_t oks[4], done;
    int i;
    oks[0] = hot(j, RUNF(hot_base), RUNF(hot_len), RUNF(hot_writable), n, write);
    oks[1] = hot(j, RUNF(hot2_base), RUNF(hot2_len), RUNF(hot2_writable), n, write);
    oks[2] = region(j, RUNF(ctx), RUNF(ctx_len), n);
    oks[3] = region(j, RUNF(stack_lo), RUNF(stack_len), n);
    mov_imm32(j, R10, pc << 8 | (unsigned)write << 4 | n);
    call_to(j, x->tramp_mem);
    rr(j, 0, 0x85, R10, R10);
    done = jcc8(j, CC_E);
    leave(x, 0, pc, j->pre[pc + 1] - j->pre[x->seg]);
    here8(j, done);
    for (i = 0; i < 4; i++)
        here32(j, oks[i]);
}

/* A shorter check where the facts (jit_facts.c) allow one, before the general check: the
 * context's length for an access based on the context pointer; for a read of an array value
 * within value_size, only that the run kept its snapshots. Returns the rel32 to patch to the
 * access, 0 when there is none. */
static size_t known(struct x86 *x, uint32_t pc, int32_t off, unsigned n, int write)
{
    struct fovm_jit *j = x->j;
    const struct fovm_fact *f;
    int64_t lo, hi;
    if (!j->facts)
        return 0;
    f = &j->facts[pc];
    lo = (int64_t)f->off + off;
    hi = lo + n;
    if (f->kind == FOVM_FACT_CTX && lo >= 0 && hi < 0x7fffffff) {
        alu_run(j, 7, RUNF(ctx_len), (int32_t)hi); /* cmp ctx_len, hi */
        return jcc32(j, CC_AE);
    }
    if (f->kind == FOVM_FACT_VALUE && !write && lo >= 0 &&
        hi <= (int64_t)j->vm->maps[f->map]->info.value_size) {
        mem(j, 0, 0, 0x83, 7, R12, RUNF(forgot), 0);
        b(j, 0);
        return jcc32(j, CC_E);
    }
    return 0;
}

/* Loads and stores; r10-based ones are in the frame (the verifier checked the offsets). */
static void access(struct x86 *x, uint32_t pc, const struct ebpf_insn *in)
{
    struct fovm_jit *j = x->j;
    unsigned cls = in->code & EBPF_CLS_MASK, n = fovm_mem_size(in->code);
    unsigned basereg = cls == EBPF_CLS_LDX ? EBPF_SRC(in) : EBPF_DST(in);
    int base = RBP;
    int32_t disp = in->off;
    if (basereg != 10) {
        size_t shortcut;
        mem(j, 1, 0, 0x8d, R11, REG[basereg], in->off, 0); /* lea r11, [base + off] */
        shortcut = known(x, pc, in->off, n, cls != EBPF_CLS_LDX);
        check(x, pc, n, cls != EBPF_CLS_LDX);
        if (shortcut)
            here32(j, shortcut);
        base = R11;
        disp = 0;
    }
    switch (in->code) {
    case EBPF_OP_LDXB: mem(j, 0, 0, 0x0fb6, D(in), base, disp, 0); break;
    case EBPF_OP_LDXH: mem(j, 0, 0, 0x0fb7, D(in), base, disp, 0); break;
    case EBPF_OP_LDXW: mem(j, 0, 0, 0x8b, D(in), base, disp, 0); break;
    case EBPF_OP_LDXDW: mem(j, 1, 0, 0x8b, D(in), base, disp, 0); break;
    case EBPF_OP_LDXSB: mem(j, 1, 0, 0x0fbe, D(in), base, disp, 0); break;
    case EBPF_OP_LDXSH: mem(j, 1, 0, 0x0fbf, D(in), base, disp, 0); break;
    case EBPF_OP_LDXSW: mem(j, 1, 0, 0x63, D(in), base, disp, 0); break;
    case EBPF_OP_STXB: mem(j, 0, 0, 0x88, S(in), base, disp, (S(in) & ~3) == 4); break;
    case EBPF_OP_STXH: mem(j, 0, 1, 0x89, S(in), base, disp, 0); break;
    case EBPF_OP_STXW: mem(j, 0, 0, 0x89, S(in), base, disp, 0); break;
    case EBPF_OP_STXDW: mem(j, 1, 0, 0x89, S(in), base, disp, 0); break;
    case EBPF_OP_STB:
        mem(j, 0, 0, 0xc6, 0, base, disp, 0);
        b(j, (unsigned)in->imm & 0xffu);
        break;
    case EBPF_OP_STH:
        mem(j, 0, 1, 0xc7, 0, base, disp, 0);
        b(j, (unsigned)in->imm & 0xffu);
        b(j, ((unsigned)in->imm >> 8) & 0xffu);
        break;
    case EBPF_OP_STW:
    case EBPF_OP_STDW:
        mem(j, in->code == EBPF_OP_STDW, 0, 0xc7, 0, base, disp, 0);
        d32(j, (uint32_t)in->imm);
        break;
    default: j->failed = 1;
    }
}

static void spill(struct fovm_jit *j, unsigned from, unsigned to, int load)
{
    unsigned i;
    for (i = from; i <= to; i++)
        mem(j, 1, 0, load ? 0x8b : 0x89, REG[i], R12, RUNF(jit_regs) + 8 * (int32_t)i, 0);
}

static void atomic(struct x86 *x, uint32_t pc, const struct ebpf_insn *in)
{
    struct fovm_jit *j = x->j;
    mem(j, 1, 0, 0x8d, R11, D(in), in->off, 0);
    spill(j, 0, 10, 0); /* r10 too: it may be the source (never the one written back) */
    rr(j, 1, 0x89, R11, RSI);
    mov_imm32(j, RDX, pc);
    rr(j, 1, 0x89, R12, RDI);
    CALL_C(j, fovm_jit_atomic);
    status_check(x, pc);
    spill(j, 0, 9, 1);
}

static void lddw(struct fovm_jit *j, uint32_t pc, const struct ebpf_insn *in)
{
    uint64_t at;
    const struct ebpf_insn *p = in;
    uint32_t i;
    int pseudo = 0;
    for (i = 0; i < j->vm->npseudo; i++) /* relinking cleared their src field */
        pseudo |= j->vm->pseudo[i].pc == pc;
    if (!pseudo) {
        mov_imm64(j, D(in), (uint64_t)(uint32_t)in[0].imm | (uint64_t)(uint32_t)in[1].imm << 32);
        return;
    }
    /* a map address: read from the instruction at run time (relinking rewrites it) */
    fovm_copy(&at, &p, sizeof at);
    mov_imm64(j, R11, at);
    mem(j, 0, 0, 0x8b, D(in), R11, 4, 0);
    mem(j, 0, 0, 0x8b, R11, R11, 12, 0);
    rex(j, 1, 0, R11, 0);
    b(j, 0xc1), b(j, 0xe0u | (R11 & 7)), b(j, 32); /* shl r11, 32 */
    rr(j, 1, 0x09, R11, D(in));
}

/* ---- map_lookup_elem inline (array maps the code generator saw in r1) ---- */

#define MAPF(field) ((int32_t)offsetof(struct fovm_map, field))

static void imul_imm(struct fovm_jit *j, int r, uint32_t v) /* r = r * v (64-bit) */
{
    rex(j, 1, r, r, 0);
    b(j, 0x69);
    b(j, 0xc0u | (unsigned)(r & 7) << 3 | (unsigned)(r & 7));
    d32(j, v);
}

/* jcc rel32 to a label of the inline lookup, patched when it is placed */
struct fixups {
    size_t at[8];
    unsigned n;
};
static void jcc_to(struct fovm_jit *j, struct fixups *f, int cc)
{
    if (f->n < 8)
        f->at[f->n++] = cc < 0 ? jmp32(j) : jcc32(j, cc);
    else
        j->failed = 1;
}
static void place(struct fovm_jit *j, const struct fixups *f)
{
    unsigned i;
    for (i = 0; i < f->n; i++)
        here32(j, f->at[i]);
}

/* fovm_lookup_map's fast paths for an array map m in native code, with no call: the key a
 * 4-byte index in the current frame, the row in the map's own memory (a local map), in the
 * run's whole-map copy (a snapshot run whose first copy is m), or in place in shared storage
 * (a zero-copy run whose first shared map is m and whose sequence is unchanged); the row
 * becomes the hot region as in C. r0 = the row or 0; r1-r5 are kept. Everything else jumps
 * to the label the caller gets back (the C call). */
static void lookup_inline(struct fovm_jit *j, const struct fovm_map *m, struct fixups *slow,
                          struct fixups *done)
{
    struct fixups null = {{0}, 0}, shared = {{0}, 0}, zc = {{0}, 0}, have = {{0}, 0};
    uint64_t a;
    size_t same;
    fovm_copy(&a, &m, sizeof a);
    mem(j, 1, 0, 0x3b, RSI, R12, RUNF(stack_lo), 0); /* cmp rsi, stack_lo */
    jcc_to(j, slow, CC_B);
    mem(j, 1, 0, 0x8b, R11, R12, RUNF(stack_top), 0);
    alu_imm(j, 1, 5, R11, 4);
    rr(j, 1, 0x39, R11, RSI); /* cmp rsi, r11 */
    jcc_to(j, slow, CC_A);
    mem(j, 0, 0, 0x8b, R9, RSI, 0, 0); /* r9d = index */
    alu_imm(j, 0, 7, R9, (int32_t)m->info.max_entries);
    jcc_to(j, &null, CC_AE);
    imul_imm(j, R9, (uint32_t)m->vstride);
    mov_imm64(j, R10, a);
    mem(j, 0, 0, 0x83, 7, R10, MAPF(shared), 0);
    b(j, 0);
    jcc_to(j, &shared, CC_NE);
    /* a local map: writable unless read-only or the run is zero-copy */
    mem(j, 1, 0, 0x03, R9, R10, MAPF(data), 0);
    mem(j, 0, 0, 0x8b, R11, R12, RUNF(zc), 0);
    mem(j, 0, 0, 0x0b, R11, R10, MAPF(readonly), 0); /* or r11d, readonly */
    rr(j, 0, 0x85, R11, R11);
    b(j, 0x41), b(j, 0x0f), b(j, 0x94), b(j, 0xc3);   /* sete r11b */
    b(j, 0x45), b(j, 0x0f), b(j, 0xb6), b(j, 0xdb);   /* movzx r11d, r11b */
    jcc_to(j, &have, -1);
    place(j, &shared);
    mem(j, 0, 0, 0x83, 7, R12, RUNF(zc), 0);
    b(j, 0);
    jcc_to(j, &zc, CC_NE);
    /* a snapshot run: m must be its first whole-map copy (whole[0].map is NULL while the
     * run has none) */
    mem(j, 1, 0, 0x3b, R10, R12, RUNF(whole[0].map), 0);
    jcc_to(j, slow, CC_NE);
    /* the row must be written out already (rows past the map's count are written lazily) */
    mem(j, 1, 0, 0x8d, R11, R9, (int32_t)m->vstride, 0);
    mem(j, 1, 0, 0x3b, R11, R12, RUNF(whole[0].filled), 0);
    jcc_to(j, slow, CC_A);
    mem(j, 1, 0, 0x03, R9, R12, RUNF(whole[0].copy), 0);
    mov_imm32(j, R11, 1);
    jcc_to(j, &have, -1);
    /* a zero-copy run: m must be its first shared map, its sequence unchanged */
    place(j, &zc);
    mem(j, 0, 0, 0x83, 7, R12, RUNF(nseen), 0);
    b(j, 0);
    jcc_to(j, slow, CC_E);
    mem(j, 1, 0, 0x3b, R10, R12, RUNF(seen[0].map), 0);
    jcc_to(j, slow, CC_NE);
    mem(j, 1, 0, 0x8b, R11, R10, MAPF(hdr), 0);
    mem(j, 0, 0, 0x8b, R11, R11, (int32_t)offsetof(struct fovm_map_hdr, seq), 0);
    mem(j, 0, 0, 0x3b, R11, R12, RUNF(seen[0].seq), 0);
    jcc_to(j, slow, CC_NE);
    mem(j, 1, 0, 0x03, R9, R10, MAPF(data), 0);
    rr(j, 0, 0x31, R11, R11);
    /* r9 = the row, r11d = writable: fovm_set_hot */
    place(j, &have);
    mem(j, 1, 0, 0x3b, R9, R12, RUNF(hot_base), 0);
    same = jcc8(j, CC_E);
    mem(j, 1, 0, 0x8b, RAX, R12, RUNF(hot_base), 0);
    mem(j, 1, 0, 0x89, RAX, R12, RUNF(hot2_base), 0);
    mem(j, 1, 0, 0x8b, RAX, R12, RUNF(hot_len), 0);
    mem(j, 1, 0, 0x89, RAX, R12, RUNF(hot2_len), 0);
    mem(j, 0, 0, 0x8b, RAX, R12, RUNF(hot_writable), 0);
    mem(j, 0, 0, 0x89, RAX, R12, RUNF(hot2_writable), 0);
    here8(j, same);
    mem(j, 1, 0, 0x89, R9, R12, RUNF(hot_base), 0);
    mem(j, 1, 0, 0xc7, 0, R12, RUNF(hot_len), 0);
    d32(j, (uint32_t)m->info.value_size);
    mem(j, 0, 0, 0x89, R11, R12, RUNF(hot_writable), 0);
    rr(j, 1, 0x89, R9, RAX);
    jcc_to(j, done, -1);
    place(j, &null);
    rr(j, 0, 0x31, RAX, RAX);
    jcc_to(j, done, -1);
}

#include "jit_x86_alu.h"

#endif /* FOVM_JIT_X86_OPS_H */
