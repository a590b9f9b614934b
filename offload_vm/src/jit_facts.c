/*
 * What native code may know about a register before each instruction, proven over every
 * path (a forward data-flow pass to a fixed point): the context pointer plus a constant, a
 * map (lddw), or a value of an array map plus a constant, from the built-in map_lookup_elem,
 * known not to be NULL once a 64-bit comparison with 0 says so. The code generator uses it
 * to replace the general bounds check of a load or store by a shorter one (jit_x86_ops.h):
 * a context access needs only the run's context length; a read of an array value within
 * value_size needs nothing but the run not having recycled its snapshot scratch (run->
 * forgot). Anything else, and every write to a map value, keeps the general check, so the
 * two engines still agree on every fault and on every side effect of a zero-copy run.
 *
 * Soundness: a register's fact only ever comes from an instruction that makes it so; any
 * other write to the register (ALU ops other than mov and add/sub of a constant, loads,
 * helper and local calls for r0-r5, atomics that write back) makes it unknown; facts meet
 * at joins only where they are equal. Stack slots are not tracked (a spilled pointer comes
 * back unknown), and a function called locally starts with nothing known.
 */
#include <stdlib.h>

#include "jit.h"

#if FOVM_HAVE_JIT

#define OFF_LIMIT (1 << 24) /* offsets beyond this many bytes are not tracked */

struct facts_pass {
    const struct fovm_vm *vm;
    struct fovm_fact *in; /* EBPF_NREGS facts before each instruction */
    uint8_t *seen;        /* a state reached the instruction */
    uint32_t *work;
    uint32_t nwork;
};

static int fact_eq(const struct fovm_fact *a, const struct fovm_fact *b)
{
    return a->kind == b->kind && a->map == b->map && a->off == b->off;
}

/* Joins regs into the state before pc; queues pc when that state changed. */
static void flow(struct facts_pass *p, uint32_t pc, const struct fovm_fact *regs)
{
    struct fovm_fact *at = p->in + (size_t)pc * EBPF_NREGS;
    int changed = !p->seen[pc];
    unsigned r;
    if (pc >= p->vm->ninsns)
        return;
    for (r = 0; r < EBPF_NREGS; r++) {
        if (!p->seen[pc]) {
            at[r] = regs[r];
        } else if (!fact_eq(&at[r], &regs[r]) && at[r].kind != FOVM_FACT_ANY) {
            at[r].kind = FOVM_FACT_ANY;
            changed = 1;
        }
    }
    p->seen[pc] = 1;
    if (changed)
        p->work[p->nwork++] = pc; /* at most one entry per pc and change: see the bound */
}

static void set_any(struct fovm_fact *f)
{
    f->kind = FOVM_FACT_ANY;
    f->map = 0;
    f->off = 0;
}

static int map_of_lddw(const struct fovm_vm *vm, uint32_t pc)
{
    uint32_t i;
    for (i = 0; i < vm->npseudo; i++)
        if (vm->pseudo[i].pc == pc && vm->pseudo[i].kind == EBPF_PSEUDO_MAP_FD)
            return (int)vm->pseudo[i].map;
    return -1;
}

/* A constant added to a pointer fact: still that pointer, or unknown when out of range. */
static void add_const(struct fovm_fact *f, int64_t k)
{
    int64_t off = (int64_t)f->off + k;
    if ((f->kind == FOVM_FACT_CTX || f->kind == FOVM_FACT_VALUE) && off > -OFF_LIMIT &&
        off < OFF_LIMIT)
        f->off = (int32_t)off;
    else
        set_any(f);
}

/* The state after a non-branching instruction. */
static void transfer(const struct facts_pass *p, uint32_t pc, struct fovm_fact *r)
{
    const struct ebpf_insn *in = &p->vm->insns[pc];
    unsigned cls = in->code & EBPF_CLS_MASK, dst = EBPF_DST(in), i;
    if (in->code == EBPF_OP_LDDW) {
        int m = map_of_lddw(p->vm, pc);
        set_any(&r[dst]);
        if (m >= 0) {
            r[dst].kind = FOVM_FACT_MAP;
            r[dst].map = (uint8_t)m;
        }
    } else if (in->code == EBPF_OP_MOV64_REG && in->off == 0) {
        r[dst] = r[EBPF_SRC(in)];
    } else if (in->code == EBPF_OP_ADD64_IMM || in->code == EBPF_OP_SUB64_IMM) {
        add_const(&r[dst], in->code == EBPF_OP_ADD64_IMM ? (int64_t)in->imm : -(int64_t)in->imm);
    } else if (cls == EBPF_CLS_ALU || cls == EBPF_CLS_ALU64 || cls == EBPF_CLS_LDX ||
               cls == EBPF_CLS_LD) {
        set_any(&r[dst]);
    } else if (in->code == EBPF_OP_ATOMIC_W || in->code == EBPF_OP_ATOMIC_DW) {
        set_any(&r[0]);
        set_any(&r[EBPF_SRC(in)]);
    } else if (in->code == EBPF_OP_CALL || in->code == EBPF_OP_CALLX) {
        int lookup = in->code == EBPF_OP_CALL && EBPF_SRC(in) != EBPF_PSEUDO_CALL &&
                     in->imm == 1 && fovm_helper_get(p->vm, 1)->builtin &&
                     r[1].kind == FOVM_FACT_MAP &&
                     p->vm->maps[r[1].map]->info.type == FOVM_MAP_ARRAY;
        uint8_t m = r[1].map;
        for (i = 0; i <= 5; i++)
            set_any(&r[i]);
        if (lookup) {
            r[0].kind = FOVM_FACT_VALUE_OR_NULL;
            r[0].map = m;
        }
    }
}

/* Successors of pc with the state after it (branches on a 64-bit test of a value or NULL
 * against 0 say which it is on each side). */
static void step(struct facts_pass *p, uint32_t pc)
{
    const struct ebpf_insn *in = &p->vm->insns[pc];
    unsigned cls = in->code & EBPF_CLS_MASK, op = in->code & EBPF_OP_MASK;
    struct fovm_fact r[EBPF_NREGS], taken[EBPF_NREGS];
    fovm_copy(r, p->in + (size_t)pc * EBPF_NREGS, sizeof r);
    if (in->code == EBPF_OP_EXIT)
        return;
    if (in->code == EBPF_OP_LDDW) {
        transfer(p, pc, r);
        flow(p, pc + 2, r);
        return;
    }
    if (in->code == EBPF_OP_JA || in->code == EBPF_OP_JA32) {
        flow(p, pc + 1 + (uint32_t)(in->code == EBPF_OP_JA32 ? in->imm : in->off), r);
        return;
    }
    if ((cls == EBPF_CLS_JMP || cls == EBPF_CLS_JMP32) && op != EBPF_JMP_CALL) {
        unsigned d = EBPF_DST(in);
        fovm_copy(taken, r, sizeof r);
        if (cls == EBPF_CLS_JMP && !(in->code & EBPF_SRC_X) && in->imm == 0 &&
            r[d].kind == FOVM_FACT_VALUE_OR_NULL && (op == EBPF_JMP_JEQ || op == EBPF_JMP_JNE)) {
            struct fovm_fact *null = op == EBPF_JMP_JEQ ? &taken[d] : &r[d];
            struct fovm_fact *value = op == EBPF_JMP_JEQ ? &r[d] : &taken[d];
            set_any(null);
            value->kind = FOVM_FACT_VALUE;
        }
        flow(p, pc + 1 + (uint32_t)(int32_t)in->off, taken);
        flow(p, pc + 1, r);
        return;
    }
    if (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL) {
        unsigned i;
        struct fovm_fact entry[EBPF_NREGS];
        for (i = 0; i < EBPF_NREGS; i++)
            set_any(&entry[i]);
        flow(p, pc + 1 + (uint32_t)in->imm, entry); /* a function starts with nothing known */
        for (i = 0; i <= 5; i++)
            set_any(&r[i]); /* r6-r9 come back as they were */
        flow(p, pc + 1, r);
        return;
    }
    transfer(p, pc, r);
    flow(p, pc + 1, r);
}

struct fovm_fact *fovm_jit_facts(const struct fovm_vm *vm)
{
    struct facts_pass p;
    struct fovm_fact entry[EBPF_NREGS];
    uint32_t n = vm->ninsns, i;
    /* each pc is queued when first reached and once per register that becomes unknown */
    size_t cap = (size_t)n * (EBPF_NREGS + 2) + 1;
    p.vm = vm;
    p.in = (struct fovm_fact *)calloc((size_t)n * EBPF_NREGS, sizeof *p.in);
    p.seen = (uint8_t *)calloc(n, 1);
    p.work = (uint32_t *)malloc(cap * sizeof *p.work);
    p.nwork = 0;
    if (!p.in || !p.seen || !p.work) {
        free(p.in);
        free(p.seen);
        free(p.work);
        return NULL;
    }
    for (i = 0; i < EBPF_NREGS; i++)
        set_any(&entry[i]);
    entry[1].kind = FOVM_FACT_CTX;
    flow(&p, 0, entry);
    while (p.nwork)
        step(&p, p.work[--p.nwork]);
    free(p.seen);
    free(p.work);
    return p.in;
}

#else
typedef int fovm_jit_facts_unused; /* no native code in this build */
#endif /* FOVM_HAVE_JIT */
