/*
 * The load-time verifier: opcode and field checks, control flow (targets, lddw slots,
 * functions, no falling off), a dataflow pass for registers read before written, helper
 * and map references, stack offsets of r10-based accesses and the depth of local calls.
 * Run-time checks (memory bounds, budget) are the interpreter's.
 */
#include "fovm_int.h"

#define UNSEEN 0x8000u
#define R(n) (1u << (n))
#define ARGS (R(1) | R(2) | R(3) | R(4) | R(5))
#define SAVED (R(6) | R(7) | R(8) | R(9) | R(10))

enum { F_LDDW2 = 1, F_FUNC = 2, F_QUEUED = 4 };

struct vstate {
    struct fovm_vm *vm;
    const struct ebpf_insn *in;
    uint32_t n;
    uint8_t *flags;
    uint16_t *func;    /* function index of each instruction */
    uint16_t *mask;    /* registers written on every path to each instruction */
    uint32_t *work;
    uint32_t nwork;
    uint8_t *depth;    /* per function: 0 unknown, 1 visiting, else 2 + calls below */
    fovm_error *err;
};

#define reject(s, pc, ...) fovm_fail_at((s)->err, FOVM_E_REJECTED, (int)(pc), __VA_ARGS__)

static int is_valid_opcode(uint8_t code)
{
#define CASE_OP(name, value) case (value):
    switch (code) {
        EBPF_OPCODES(CASE_OP)
        return 1;
    default:
        return 0;
    }
#undef CASE_OP
}

static int check_alu(struct vstate *s, uint32_t pc, const struct ebpf_insn *i)
{
    unsigned op = i->code & EBPF_OP_MASK, x = i->code & EBPF_SRC_X;
    int is64 = (i->code & EBPF_CLS_MASK) == EBPF_CLS_ALU64;
    if (op == EBPF_ALU_END) {
        if (EBPF_SRC(i) || i->off || (i->imm != 16 && i->imm != 32 && i->imm != 64))
            return reject(s, pc, "byte swap needs width 16, 32 or 64, not %d", (int)i->imm);
        return 0;
    }
    if (op == EBPF_ALU_NEG) {
        if (EBPF_SRC(i) || i->off || i->imm)
            return reject(s, pc, "neg takes no source, offset or imm");
        return 0;
    }
    if (x && i->imm)
        return reject(s, pc, "register source with nonzero imm %d", (int)i->imm);
    if (!x && EBPF_SRC(i))
        return reject(s, pc, "immediate source with nonzero src register r%u",
                      EBPF_SRC(i), 0);
    if (i->off == 0)
        return 0;
    if ((op == EBPF_ALU_DIV || op == EBPF_ALU_MOD) && i->off == 1)
        return 0;
    if (op == EBPF_ALU_MOV && x && (i->off == 8 || i->off == 16 || (is64 && i->off == 32)))
        return 0;
    return reject(s, pc, "invalid offset %d for alu opcode 0x%x", (int)i->off, i->code);
}

static int check_stack_off(struct vstate *s, uint32_t pc, unsigned base, int off, unsigned size)
{
    if (base != 10)
        return 0;
    if (off < -EBPF_STACK_SIZE || off + (int)size > 0)
        return reject(s, pc, "stack access at r10%c%d of %u bytes is outside the 512-byte frame",
                         off < 0 ? '-' : '+', off < 0 ? -off : off, size);
    return 0;
}

static int check_mem(struct vstate *s, uint32_t pc, const struct ebpf_insn *i)
{
    unsigned cls = i->code & EBPF_CLS_MASK, size = fovm_mem_size(i->code);
    if (cls == EBPF_CLS_LDX)
        return i->imm ? reject(s, pc, "load with nonzero imm %d", (int)i->imm)
                      : check_stack_off(s, pc, EBPF_SRC(i), i->off, size);
    if (cls == EBPF_CLS_ST && EBPF_SRC(i))
        return reject(s, pc, "store of an immediate with src register r%u",
                      EBPF_SRC(i), 0);
    if (cls == EBPF_CLS_STX && (i->code & EBPF_MODE_MASK) == EBPF_MODE_ATOMIC) {
        int op = i->imm;
        if (op != EBPF_ATOMIC_XCHG && op != EBPF_ATOMIC_CMPXCHG &&
            (op & ~EBPF_ATOMIC_FETCH) != EBPF_ATOMIC_ADD &&
            (op & ~EBPF_ATOMIC_FETCH) != EBPF_ATOMIC_OR &&
            (op & ~EBPF_ATOMIC_FETCH) != EBPF_ATOMIC_AND &&
            (op & ~EBPF_ATOMIC_FETCH) != EBPF_ATOMIC_XOR)
            return reject(s, pc, "unknown atomic operation 0x%x", (unsigned)op);
        if ((op & EBPF_ATOMIC_FETCH) && op != EBPF_ATOMIC_CMPXCHG && EBPF_SRC(i) == 10)
            return reject(s, pc, "r10 is read-only (a fetching atomic writes its source)");
    } else if (cls == EBPF_CLS_STX && i->imm) {
        return reject(s, pc, "store with nonzero imm %d", (int)i->imm);
    }
    return check_stack_off(s, pc, EBPF_DST(i), i->off, size);
}

static int check_lddw(struct vstate *s, uint32_t pc, const struct ebpf_insn *i)
{
    unsigned src = EBPF_SRC(i);
    const struct fovm_map *m;
    if (pc + 1 >= s->n)
        return reject(s, pc, "lddw is missing its second slot");
    if (i[1].code || i[1].regs || i[1].off || i->off)
        return reject(s, pc, "malformed lddw: its second slot may hold only imm");
    s->flags[pc + 1] |= F_LDDW2;
    if (src == EBPF_PSEUDO_IMM64)
        return 0;
    if (src != EBPF_PSEUDO_MAP_FD && src != EBPF_PSEUDO_MAP_IDX &&
        src != EBPF_PSEUDO_MAP_VALUE && src != EBPF_PSEUDO_MAP_IDX_VALUE)
        return reject(s, pc, "unsupported lddw source %u", src);
    if ((uint32_t)i->imm >= s->vm->nmaps)
        return reject(s, pc, "lddw names map %u but the program has %u maps",
                      (unsigned)i->imm, s->vm->nmaps);
    m = s->vm->maps[i->imm];
    if (src == EBPF_PSEUDO_MAP_FD || src == EBPF_PSEUDO_MAP_IDX)
        return 0;
    if (m->info.type != FOVM_MAP_ARRAY || (uint32_t)i[1].imm >= m->info.value_size)
        return reject(s, pc, "lddw value offset %u is outside array map %u",
                      (unsigned)i[1].imm, (unsigned)i->imm);
    return 0;
}

static int check_jmp(struct vstate *s, uint32_t pc, const struct ebpf_insn *i)
{
    unsigned op = i->code & EBPF_OP_MASK, x = i->code & EBPF_SRC_X;
    if (i->code == EBPF_OP_EXIT)
        return (i->regs || i->off || i->imm) ? reject(s, pc, "exit with operands")
                                             : 0;
    if (i->code == EBPF_OP_CALL) {
        if (EBPF_DST(i) || i->off)
            return reject(s, pc, "call with dst or offset set");
        if (EBPF_SRC(i) == EBPF_PSEUDO_HELPER) {
            if (!fovm_helper_get(s->vm, (uint32_t)i->imm))
                return reject(s, pc, "unknown helper %d", (int)i->imm);
            return 0;
        }
        if (EBPF_SRC(i) != EBPF_PSEUDO_CALL)
            return reject(s, pc, "unsupported call kind (src %u)", EBPF_SRC(i));
        return 0;
    }
    if (i->code == EBPF_OP_CALLX)
        return (EBPF_SRC(i) || i->off || i->imm) ? reject(s, pc, "callx with extra operands") : 0;
    if (op == EBPF_JMP_JA)
        return (i->regs || (i->code == EBPF_OP_JA ? i->imm : i->off))
                   ? reject(s, pc, "ja with operands")
                   : 0;
    if (x && i->imm)
        return reject(s, pc, "register compare with nonzero imm %d", (int)i->imm);
    if (!x && EBPF_SRC(i))
        return reject(s, pc, "immediate compare with src register r%u", EBPF_SRC(i));
    return 0;
}

static int writes_dst(const struct ebpf_insn *i)
{
    unsigned cls = i->code & EBPF_CLS_MASK;
    return cls == EBPF_CLS_ALU || cls == EBPF_CLS_ALU64 || cls == EBPF_CLS_LDX ||
           cls == EBPF_CLS_LD;
}

static int check_insn(struct vstate *s, uint32_t pc)
{
    const struct ebpf_insn *i = &s->in[pc];
    unsigned cls = i->code & EBPF_CLS_MASK;
    if (!is_valid_opcode(i->code))
        return reject(s, pc, "unknown opcode 0x%x", i->code);
    if (EBPF_DST(i) > 10 || EBPF_SRC(i) > 10)
        return reject(s, pc, "invalid register r%u",
                      EBPF_DST(i) > 10 ? EBPF_DST(i) : EBPF_SRC(i), 0);
    if (writes_dst(i) && EBPF_DST(i) == 10)
        return reject(s, pc, "r10 is read-only");
    switch (cls) {
    case EBPF_CLS_ALU:
    case EBPF_CLS_ALU64: return check_alu(s, pc, i);
    case EBPF_CLS_LD: return check_lddw(s, pc, i);
    case EBPF_CLS_JMP:
    case EBPF_CLS_JMP32: return check_jmp(s, pc, i);
    default: return check_mem(s, pc, i);
    }
}

/* Whether an instruction transfers control to a target (jumps and local calls). */
static int has_target(const struct ebpf_insn *i)
{
    unsigned cls = i->code & EBPF_CLS_MASK, op = i->code & EBPF_OP_MASK;
    if (i->code == EBPF_OP_CALL)
        return EBPF_SRC(i) == EBPF_PSEUDO_CALL;
    return (cls == EBPF_CLS_JMP || cls == EBPF_CLS_JMP32) && op != EBPF_JMP_EXIT &&
           op != EBPF_JMP_CALL;
}

static int64_t target_of(const struct ebpf_insn *i, uint32_t pc)
{
    if (i->code == EBPF_OP_JA32 || i->code == EBPF_OP_CALL)
        return (int64_t)pc + 1 + i->imm;
    return (int64_t)pc + 1 + i->off;
}

static int check_targets(struct vstate *s)
{
    uint32_t pc, f = 0;
    s->flags[0] |= F_FUNC;
    for (pc = 0; pc < s->n; pc++) {
        const struct ebpf_insn *i = &s->in[pc];
        int64_t t = target_of(i, pc);
        if ((s->flags[pc] & F_LDDW2) || !has_target(i))
            continue;
        if (t < 0 || t >= (int64_t)s->n)
            return reject(s, pc, "jump to %D is outside the program of %u instructions", t, s->n);
        if (s->flags[t] & F_LDDW2)
            return reject(s, pc, "jump to %u lands inside an lddw", (unsigned)t);
        if (i->code == EBPF_OP_CALL)
            s->flags[t] |= F_FUNC;
    }
    for (pc = 0; pc < s->n; pc++) {
        if (pc && (s->flags[pc] & F_FUNC))
            f++;
        s->func[pc] = (uint16_t)f;
    }
    for (pc = 0; pc < s->n; pc++) {
        const struct ebpf_insn *i = &s->in[pc];
        int64_t t = target_of(i, pc);
        if (!(s->flags[pc] & F_LDDW2) && has_target(i) && i->code != EBPF_OP_CALL &&
            s->func[t] != s->func[pc])
            return reject(s, pc, "jump to %u leaves its function", (unsigned)t);
    }
    return 0;
}

/* Deepest chain of local calls below function starting at `entry`; rejects recursion. */
static int call_depth(struct vstate *s, uint32_t entry, unsigned level, unsigned *out)
{
    uint32_t pc, f = s->func[entry];
    unsigned deepest = 0;
    if (s->depth[f] == 1)
        return reject(s, entry, "recursive call into the function at %u", entry);
    if (s->depth[f] >= 2) {
        *out = s->depth[f] - 2u;
        return 0;
    }
    s->depth[f] = 1;
    for (pc = entry; pc < s->n && s->func[pc] == f; pc++) {
        const struct ebpf_insn *i = &s->in[pc];
        unsigned below = 0;
        int rc;
        if (i->code != EBPF_OP_CALL || EBPF_SRC(i) != EBPF_PSEUDO_CALL)
            continue;
        if (level + 1 > FOVM_MAX_CALL_DEPTH)
            return reject(s, pc, "local calls nest deeper than %u",
                          FOVM_MAX_CALL_DEPTH, 0);
        rc = call_depth(s, (uint32_t)(pc + 1 + i->imm), level + 1, &below);
        if (rc)
            return rc;
        if (below + 1 > deepest)
            deepest = below + 1;
    }
    if (level + deepest > FOVM_MAX_CALL_DEPTH)
        return reject(s, entry, "local calls nest deeper than %u",
                      FOVM_MAX_CALL_DEPTH, 0);
    s->depth[f] = (uint8_t)(2 + deepest);
    *out = deepest;
    return 0;
}

static void flow(struct vstate *s, uint32_t pc, unsigned mask)
{
    unsigned old = s->mask[pc];
    unsigned now = (old & UNSEEN) ? mask : (old & mask);
    if (now == old)
        return;
    s->mask[pc] = (uint16_t)now;
    if (!(s->flags[pc] & F_QUEUED)) {
        s->flags[pc] |= F_QUEUED;
        s->work[s->nwork++] = pc;
    }
}

/* Registers an instruction reads. */
static unsigned reads(const struct fovm_vm *vm, const struct ebpf_insn *i)
{
    unsigned cls = i->code & EBPF_CLS_MASK, op = i->code & EBPF_OP_MASK;
    unsigned d = R(EBPF_DST(i)), sr = R(EBPF_SRC(i)), x = i->code & EBPF_SRC_X;
    switch (cls) {
    case EBPF_CLS_ALU:
    case EBPF_CLS_ALU64:
        if (op == EBPF_ALU_MOV)
            return x ? sr : 0;
        return d | (x ? sr : 0);
    case EBPF_CLS_LD: return 0;
    case EBPF_CLS_LDX: return sr;
    case EBPF_CLS_ST: return d;
    case EBPF_CLS_STX:
        if ((i->code & EBPF_MODE_MASK) == EBPF_MODE_ATOMIC && i->imm == EBPF_ATOMIC_CMPXCHG)
            return d | sr | R(0);
        return d | sr;
    default: break;
    }
    if (i->code == EBPF_OP_EXIT)
        return R(0);
    if (i->code == EBPF_OP_CALLX)
        return d;
    if (i->code == EBPF_OP_CALL) {
        const struct fovm_helper *h;
        if (EBPF_SRC(i) != EBPF_PSEUDO_HELPER)
            return 0;
        h = fovm_helper_get(vm, (uint32_t)i->imm);
        return h ? (ARGS & ((1u << (h->nargs + 1)) - 2u)) : 0;
    }
    if (op == EBPF_JMP_JA)
        return 0;
    return d | (x ? sr : 0);
}

/* The registers written on every path after one instruction, to its successors. */
static int step(struct vstate *s, uint32_t pc)
{
    const struct ebpf_insn *i = &s->in[pc];
    unsigned m = s->mask[pc], need = reads(s->vm, i), cls = i->code & EBPF_CLS_MASK;
    int64_t t = has_target(i) ? target_of(i, pc) : -1;
    uint32_t next = pc + (i->code == EBPF_OP_LDDW ? 2u : 1u);
    if (need & ~m) {
        unsigned r = 0;
        while (!((need & ~m) & R(r)))
            r++;
        return reject(s, pc, "register r%u is read before it is written", r);
    }
    if (i->code == EBPF_OP_EXIT)
        return 0;
    if (i->code == EBPF_OP_CALL || i->code == EBPF_OP_CALLX) {
        if (t >= 0)
            flow(s, (uint32_t)t, m & (ARGS | R(10)));
        m = (m & SAVED) | R(0);
    } else if (writes_dst(i)) {
        m |= R(EBPF_DST(i));
    } else if (cls == EBPF_CLS_STX && (i->code & EBPF_MODE_MASK) == EBPF_MODE_ATOMIC) {
        m |= i->imm == EBPF_ATOMIC_CMPXCHG ? R(0) : 0u;
    }
    if (t >= 0 && i->code != EBPF_OP_CALL)
        flow(s, (uint32_t)t, m);
    if (i->code == EBPF_OP_JA || i->code == EBPF_OP_JA32)
        return 0;
    if (next >= s->n || s->func[next] != s->func[pc])
        return reject(s, pc, "execution falls off the end of %s after this instruction",
                      s->func[pc] ? "a function" : "the program");
    flow(s, next, m);
    return 0;
}

int fovm_verify(struct fovm_vm *vm, const struct ebpf_insn *insns, uint32_t n, fovm_error *err)
{
    struct vstate s;
    uint32_t pc;
    unsigned deepest;
    int rc;
    s.vm = vm;
    s.in = insns;
    s.n = n;
    s.err = err;
    s.nwork = 0;
    s.flags = (uint8_t *)fovm_alloc(vm, n, FOVM_TAG_PROG);
    s.func = (uint16_t *)fovm_alloc(vm, (size_t)n * 2, FOVM_TAG_PROG);
    s.mask = (uint16_t *)fovm_alloc(vm, (size_t)n * 2, FOVM_TAG_PROG);
    s.work = (uint32_t *)fovm_alloc(vm, (size_t)n * 4, FOVM_TAG_PROG);
    s.depth = (uint8_t *)fovm_alloc(vm, n, FOVM_TAG_PROG);
    if (!s.flags || !s.func || !s.mask || !s.work || !s.depth)
        return fovm_fail(err, FOVM_E_NOMEM, -1, "no memory to verify %u instructions", n);
    for (pc = 0; pc < n; pc++) {
        if (s.flags[pc] & F_LDDW2)
            continue;
        if ((rc = check_insn(&s, pc)) != 0)
            return rc;
    }
    if ((rc = check_targets(&s)) != 0 || (rc = call_depth(&s, 0, 0, &deepest)) != 0)
        return rc;
    for (pc = 0; pc < n; pc++)
        s.mask[pc] = UNSEEN;
    flow(&s, 0, R(1) | R(2) | R(10));
    while (s.nwork) {
        pc = s.work[--s.nwork];
        s.flags[pc] &= (uint8_t)~F_QUEUED;
        if ((rc = step(&s, pc)) != 0)
            return rc;
    }
    return 0;
}
