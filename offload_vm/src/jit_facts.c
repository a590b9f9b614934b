/*
 * What native code may know about the base register of each load and store, proven over
 * every path (a forward data-flow pass over extended basic blocks to a fixed point): the
 * context pointer plus a constant, a map (lddw), or a value of an array map plus a constant,
 * from the built-in map_lookup_elem, known not to be NULL once a 64-bit comparison with 0
 * says so. Registers and the 8-byte slots of the frame are tracked (clang spills pointers).
 * The code generator uses it to replace the general bounds check of a load or store by a
 * shorter one (jit_x86_ops.h): a context access needs only the run's context length; a read
 * of an array value within value_size needs nothing but the run not having recycled its
 * snapshot scratch (run->forgot). Anything else, and every write to a map value, keeps the
 * general check, so the two engines still agree on every fault and on every side effect of
 * a zero-copy run.
 *
 * Soundness: a fact only ever comes from an instruction that makes it so; any other write
 * to a register (ALU ops other than mov and add/sub of a constant, loads, calls for r0-r5,
 * atomics that write back) or to a slot (a narrower or unaligned store, an atomic) makes it
 * unknown; a store through any pointer but r10 not proven within an array value, a helper
 * other than the built-in lookup (it writes nothing) and a local call forget every slot
 * (the general check accepts the frame's addresses whatever register made them); facts
 * meet at joins only where they are equal; a function called locally starts with nothing
 * known.
 */
#include <stdlib.h>

#include "jit.h"

#if FOVM_HAVE_JIT

#define OFF_LIMIT (1 << 24) /* offsets beyond this many bytes are not tracked */
#define NSLOTS (EBPF_STACK_SIZE / 8)

struct fstate {
    struct fovm_fact r[EBPF_NREGS];
    struct fovm_fact s[NSLOTS]; /* s[i]: the 8 bytes at r10 - EBPF_STACK_SIZE + 8 * i */
};

struct facts_pass {
    const struct fovm_vm *vm;
    int32_t *block;        /* pc -> index of its stored state, -1 when not a block start */
    struct fstate *states; /* at each block start */
    uint8_t *seen;
    uint32_t *work, nwork;
    struct fovm_fact *out; /* the result: per pc, the fact of the access's base register */
};

static void set_any(struct fovm_fact *f)
{
    f->kind = FOVM_FACT_ANY;
    f->map = 0;
    f->off = 0;
}

static void forget_slots(struct fstate *st)
{
    unsigned i;
    for (i = 0; i < NSLOTS; i++)
        set_any(&st->s[i]);
}

static void all_any(struct fstate *st)
{
    unsigned i;
    for (i = 0; i < EBPF_NREGS; i++)
        set_any(&st->r[i]);
    forget_slots(st);
}

static int fact_eq(const struct fovm_fact *a, const struct fovm_fact *b)
{
    return a->kind == b->kind && a->map == b->map && a->off == b->off;
}

static int meet(struct fovm_fact *at, const struct fovm_fact *in)
{
    if (fact_eq(at, in) || at->kind == FOVM_FACT_ANY)
        return 0;
    set_any(at);
    return 1;
}

/* Joins st into the state at the block starting at pc; queues it when that changed. */
static void flow(struct facts_pass *p, uint32_t pc, const struct fstate *st)
{
    int32_t b = pc < p->vm->ninsns ? p->block[pc] : -1;
    int changed = 0;
    unsigned i;
    if (b < 0)
        return;
    if (!p->seen[b]) {
        p->states[b] = *st;
        p->seen[b] = 1;
        changed = 1;
    } else {
        for (i = 0; i < EBPF_NREGS; i++)
            changed |= meet(&p->states[b].r[i], &st->r[i]);
        for (i = 0; i < NSLOTS; i++)
            changed |= meet(&p->states[b].s[i], &st->s[i]);
    }
    if (changed)
        p->work[p->nwork++] = pc; /* once per change: at most 1 + 75 per block */
}

int fovm_jit_lddw_map(const struct fovm_vm *vm, uint32_t pc)
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

/* A store of n bytes at base + off (an atomic too): what it does to the slots. Through a
 * pointer, only a store proven within an array value (or NULL + off, which faults) leaves
 * them: past its value, or past the context (whose length only the run knows), an address
 * the general check accepts may be in the frame. */
static void store(const struct facts_pass *p, struct fstate *st, unsigned base, int32_t off,
                  unsigned n, const struct fovm_fact *v)
{
    int64_t lo = (int64_t)off + EBPF_STACK_SIZE, i;
    if (base != 10) {
        const struct fovm_fact *f = &st->r[base];
        int64_t at = (int64_t)f->off + off;
        if ((f->kind != FOVM_FACT_VALUE && f->kind != FOVM_FACT_VALUE_OR_NULL) || at < 0 ||
            at + n > (int64_t)p->vm->maps[f->map]->info.value_size)
            forget_slots(st);
        return;
    }
    if (v && n == 8 && lo >= 0 && lo % 8 == 0 && lo / 8 < NSLOTS) {
        st->s[lo / 8] = *v;
        return;
    }
    for (i = lo / 8 - (lo < 0); i * 8 < lo + (int64_t)n; i++) /* every slot it touches */
        if (i >= 0 && i < NSLOTS)
            set_any(&st->s[i]);
}

/* The load or store at pc: its base register's fact, then what it does to the state. */
static void memory(struct facts_pass *p, uint32_t pc, struct fstate *st, int record)
{
    const struct ebpf_insn *in = &p->vm->insns[pc];
    unsigned cls = in->code & EBPF_CLS_MASK, n = fovm_mem_size(in->code);
    unsigned base = cls == EBPF_CLS_LDX ? EBPF_SRC(in) : EBPF_DST(in), dst = EBPF_DST(in);
    int64_t lo = (int64_t)in->off + EBPF_STACK_SIZE;
    if (record)
        p->out[pc] = st->r[base];
    if (cls == EBPF_CLS_LDX) {
        if (base == 10 && in->code == EBPF_OP_LDXDW && lo >= 0 && lo % 8 == 0 &&
            lo / 8 < NSLOTS)
            st->r[dst] = st->s[lo / 8];
        else
            set_any(&st->r[dst]);
    } else if (in->code == EBPF_OP_ATOMIC_W || in->code == EBPF_OP_ATOMIC_DW) {
        store(p, st, base, in->off, n, NULL);
        set_any(&st->r[0]);
        set_any(&st->r[EBPF_SRC(in)]);
    } else {
        struct fovm_fact any;
        set_any(&any);
        store(p, st, base, in->off, n, cls == EBPF_CLS_STX ? &st->r[EBPF_SRC(in)] : &any);
    }
}

static void transfer(const struct facts_pass *p, uint32_t pc, struct fstate *st)
{
    const struct ebpf_insn *in = &p->vm->insns[pc];
    unsigned dst = EBPF_DST(in), i;
    struct fovm_fact *r = st->r;
    if (in->code == EBPF_OP_LDDW) {
        int m = fovm_jit_lddw_map(p->vm, pc);
        set_any(&r[dst]);
        if (m >= 0) {
            r[dst].kind = FOVM_FACT_MAP;
            r[dst].map = (uint8_t)m;
        }
    } else if (in->code == EBPF_OP_MOV64_REG && in->off == 0) {
        r[dst] = r[EBPF_SRC(in)];
    } else if (in->code == EBPF_OP_ADD64_IMM || in->code == EBPF_OP_SUB64_IMM) {
        add_const(&r[dst], in->code == EBPF_OP_ADD64_IMM ? (int64_t)in->imm : -(int64_t)in->imm);
    } else if (in->code == EBPF_OP_CALL || in->code == EBPF_OP_CALLX) {
        const struct fovm_helper *h = fovm_helper_get(p->vm, 1);
        int builtin_lookup = in->code == EBPF_OP_CALL && in->imm == 1 && h && h->builtin;
        int lookup = builtin_lookup && r[1].kind == FOVM_FACT_MAP &&
                     p->vm->maps[r[1].map]->info.type == FOVM_MAP_ARRAY;
        uint8_t m = r[1].map;
        for (i = 0; i <= 5; i++)
            set_any(&r[i]);
        if (lookup) {
            r[0].kind = FOVM_FACT_VALUE_OR_NULL;
            r[0].map = m;
        }
        if (!builtin_lookup)
            forget_slots(st); /* a helper may write through a pointer into the frame */
    } else {
        set_any(&r[dst]); /* every other ALU op */
    }
}

/* Walks the block starting at pc with its state, to its end; record: fill p->out. */
static void walk(struct facts_pass *p, uint32_t pc, int record)
{
    struct fstate st = p->states[p->block[pc]];
    uint32_t n = p->vm->ninsns;
    for (; pc < n; pc++) {
        const struct ebpf_insn *in = &p->vm->insns[pc];
        unsigned cls = in->code & EBPF_CLS_MASK, op = in->code & EBPF_OP_MASK;
        if (in->code == EBPF_OP_EXIT)
            return;
        if (in->code == EBPF_OP_JA || in->code == EBPF_OP_JA32) {
            if (!record)
                flow(p, pc + 1 + (uint32_t)(in->code == EBPF_OP_JA32 ? in->imm : in->off), &st);
            return;
        }
        if (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL) {
            struct fstate entry;
            all_any(&entry);
            if (!record)
                flow(p, pc + 1 + (uint32_t)in->imm, &entry);
            for (op = 0; op <= 5; op++)
                set_any(&st.r[op]); /* r6-r9 come back as they were */
            forget_slots(&st);      /* the callee may write the frame through a pointer */
        } else if ((cls == EBPF_CLS_JMP || cls == EBPF_CLS_JMP32) && op != EBPF_JMP_CALL) {
            struct fstate taken = st;
            unsigned d = EBPF_DST(in);
            if (cls == EBPF_CLS_JMP && !(in->code & EBPF_SRC_X) && in->imm == 0 &&
                st.r[d].kind == FOVM_FACT_VALUE_OR_NULL &&
                (op == EBPF_JMP_JEQ || op == EBPF_JMP_JNE)) {
                set_any(op == EBPF_JMP_JEQ ? &taken.r[d] : &st.r[d]);
                (op == EBPF_JMP_JEQ ? &st.r[d] : &taken.r[d])->kind = FOVM_FACT_VALUE;
            }
            if (!record)
                flow(p, pc + 1 + (uint32_t)(int32_t)in->off, &taken);
        } else if (cls == EBPF_CLS_LDX || cls == EBPF_CLS_ST || cls == EBPF_CLS_STX) {
            memory(p, pc, &st, record);
        } else {
            transfer(p, pc, &st);
            pc += in->code == EBPF_OP_LDDW;
        }
        if (pc + 1 < n && p->block[pc + 1] >= 0) { /* the next block starts here */
            if (!record)
                flow(p, pc + 1, &st);
            return;
        }
    }
}

static void release(struct facts_pass *p)
{
    free(p->block);
    free(p->states);
    free(p->seen);
    free(p->work);
}

struct fovm_fact *fovm_jit_facts(const struct fovm_vm *vm, const uint8_t *label)
{
    struct facts_pass p;
    struct fstate entry;
    uint32_t n = vm->ninsns, pc, nblocks = 0;
    fovm_zero(&p, sizeof p);
    p.vm = vm;
    p.block = (int32_t *)malloc((size_t)n * sizeof *p.block);
    p.out = (struct fovm_fact *)calloc(n, sizeof *p.out);
    if (!p.block || !p.out)
        goto fail;
    for (pc = 0; pc < n; pc++)
        p.block[pc] = pc == 0 || label[pc] ? (int32_t)nblocks++ : -1;
    p.states = (struct fstate *)malloc((size_t)nblocks * sizeof *p.states);
    p.seen = (uint8_t *)calloc(nblocks, 1);
    p.work = (uint32_t *)malloc((size_t)nblocks * (1 + EBPF_NREGS + NSLOTS) * sizeof *p.work);
    if (!p.states || !p.seen || !p.work)
        goto fail;
    all_any(&entry);
    entry.r[1].kind = FOVM_FACT_CTX;
    flow(&p, 0, &entry);
    while (p.nwork)
        walk(&p, p.work[--p.nwork], 0);
    for (pc = 0; pc < n; pc++)
        if (p.block[pc] >= 0 && p.seen[p.block[pc]])
            walk(&p, pc, 1);
    release(&p);
    return p.out;
fail:
    release(&p);
    free(p.out);
    return NULL;
}

#else
typedef int fovm_jit_facts_unused; /* no native code in this build */
#endif /* FOVM_HAVE_JIT */
