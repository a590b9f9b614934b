/*
 * Arithmetic, control flow and the fixed code of jit_x86.c (included once by
 * jit_x86_ops.h, kept apart to keep files short).
 */
#ifndef FOVM_JIT_X86_ALU_H
#define FOVM_JIT_X86_ALU_H

/* shl/shr/sar (ext 4/5/7) of d by cl, where cl is eBPF r4's register. */
static void shift_cl(struct fovm_jit *j, int w, unsigned ext, int d, int s)
{
    int target = d;
    if (s != RCX) {
        rr(j, 1, 0x89, RCX, R11); /* keep r4 */
        rr(j, 1, 0x89, s, RCX);
        if (d == RCX)
            target = R11;
    }
    rex(j, w, 0, target, 0);
    b(j, 0xd3);
    b(j, 0xc0u | ext << 3 | (unsigned)(target & 7));
    if (s != RCX)
        rr(j, 1, 0x89, R11, RCX);
}

/* Division and modulo: by zero gives 0 (div) or the dividend (mod); signed by -1 gives the
 * negation (div) or 0 (mod), as RFC 9669 says and the interpreter does. */
static void divmod(struct fovm_jit *j, const struct ebpf_insn *in, int w, int k, int is_div)
{
    int sign = in->off == 1;
    size_t zero, m1 = 0, d1, d2;
    if (k && w)
        mov_simm(j, R11, in->imm);
    else if (k)
        mov_imm32(j, R11, (uint32_t)in->imm);
    else
        rr(j, w, 0x89, S(in), R11);
    rr(j, w, 0x89, D(in), R10);
    push(j, RAX);
    push(j, RDX);
    rr(j, w, 0x85, R11, R11);
    zero = jcc8(j, CC_E);
    if (sign) {
        alu_imm(j, w, 7, R11, -1);
        m1 = jcc8(j, CC_E);
    }
    rr(j, w, 0x89, R10, RAX);
    if (sign) {
        if (w)
            b(j, 0x48);
        b(j, 0x99); /* cqo / cdq */
    } else {
        rr(j, 0, 0x31, RDX, RDX);
    }
    rex(j, w, 0, R11, 0);
    b(j, 0xf7);
    b(j, 0xc0u | (sign ? 7u : 6u) << 3 | (R11 & 7));
    rr(j, w, 0x89, is_div ? RAX : RDX, R10);
    d1 = jmp8(j);
    here8(j, zero);
    if (is_div)
        rr(j, 0, 0x31, R10, R10);
    else if (!w)
        rr(j, 0, 0x89, R10, R10);
    d2 = jmp8(j);
    if (sign) {
        here8(j, m1);
        if (is_div) {
            rex(j, w, 0, R10, 0);
            b(j, 0xf7);
            b(j, 0xd8u | (R10 & 7)); /* neg */
        } else {
            rr(j, 0, 0x31, R10, R10);
        }
    }
    here8(j, d1);
    here8(j, d2);
    pop(j, RDX);
    pop(j, RAX);
    rr(j, 1, 0x89, R10, D(in));
}

static void byteswap(struct fovm_jit *j, const struct ebpf_insn *in)
{
    int d = D(in), to_be = in->code != EBPF_OP_LE;
    if (in->imm == 16) {
        if (to_be) {
            b(j, 0x66);
            rex(j, 0, 0, d, 0);
            b(j, 0xc1), b(j, 0xc8u | (unsigned)(d & 7)), b(j, 8); /* ror r16, 8 */
        }
        rr0f(j, 0, 0xb7, d, d, 0); /* movzx r32, r16 */
    } else if (to_be) {
        rex(j, in->imm == 64, 0, d, 0);
        b(j, 0x0f);
        b(j, 0xc8u + (unsigned)(d & 7)); /* bswap */
    } else if (in->imm == 32) {
        rr(j, 0, 0x89, d, d);
    }
}

static void alu(struct fovm_jit *j, const struct ebpf_insn *in)
{
    static const uint8_t ext[16] = {[EBPF_ALU_ADD >> 4] = 0, [EBPF_ALU_SUB >> 4] = 5,
                                    [EBPF_ALU_OR >> 4] = 1,  [EBPF_ALU_AND >> 4] = 4,
                                    [EBPF_ALU_XOR >> 4] = 6, [EBPF_ALU_LSH >> 4] = 4,
                                    [EBPF_ALU_RSH >> 4] = 5, [EBPF_ALU_ARSH >> 4] = 7};
    static const uint8_t rrop[16] = {[EBPF_ALU_ADD >> 4] = 0x01, [EBPF_ALU_SUB >> 4] = 0x29,
                                     [EBPF_ALU_OR >> 4] = 0x09,  [EBPF_ALU_AND >> 4] = 0x21,
                                     [EBPF_ALU_XOR >> 4] = 0x31};
    unsigned op = in->code & EBPF_OP_MASK, e = ext[op >> 4];
    int w = (in->code & EBPF_CLS_MASK) == EBPF_CLS_ALU64, k = !(in->code & EBPF_SRC_X);
    int d = D(in), s = S(in);
    switch (op) {
    case EBPF_ALU_ADD:
    case EBPF_ALU_SUB:
    case EBPF_ALU_OR:
    case EBPF_ALU_AND:
    case EBPF_ALU_XOR:
        if (k)
            alu_imm(j, w, e, d, in->imm);
        else
            rr(j, w, rrop[op >> 4], s, d);
        break;
    case EBPF_ALU_MUL:
        if (k) {
            rex(j, w, d, d, 0);
            b(j, 0x69), b(j, 0xc0u | (unsigned)(d & 7) << 3 | (unsigned)(d & 7));
            d32(j, (uint32_t)in->imm);
        } else {
            rr0f(j, w, 0xaf, d, s, 0);
        }
        break;
    case EBPF_ALU_MOV:
        if (k && w) {
            mov_simm(j, d, in->imm);
        } else if (k) {
            mov_imm32(j, d, (uint32_t)in->imm);
        } else if (in->off == 8) {
            rr0f(j, w, 0xbe, d, s, (s & ~3) == 4);
        } else if (in->off == 16) {
            rr0f(j, w, 0xbf, d, s, 0);
        } else if (in->off == 32) {
            rr(j, 1, 0x63, d, s);
        } else {
            rr(j, w, 0x89, s, d);
        }
        break;
    case EBPF_ALU_NEG:
        rex(j, w, 0, d, 0);
        b(j, 0xf7), b(j, 0xd8u | (unsigned)(d & 7));
        break;
    case EBPF_ALU_LSH:
    case EBPF_ALU_RSH:
    case EBPF_ALU_ARSH:
        if (k) {
            rex(j, w, 0, d, 0);
            b(j, 0xc1), b(j, 0xc0u | e << 3 | (unsigned)(d & 7));
            b(j, (unsigned)in->imm & (w ? 63u : 31u));
        } else {
            shift_cl(j, w, e, d, s);
        }
        break;
    case EBPF_ALU_DIV:
    case EBPF_ALU_MOD: divmod(j, in, w, k, op == EBPF_ALU_DIV); break;
    case EBPF_ALU_END: byteswap(j, in); break;
    default: j->failed = 1;
    }
}

static int jump_cc(unsigned op)
{
    switch (op) {
    case EBPF_JMP_JEQ: return CC_E;
    case EBPF_JMP_JNE:
    case EBPF_JMP_JSET: return CC_NE;
    case EBPF_JMP_JGT: return CC_A;
    case EBPF_JMP_JGE: return CC_AE;
    case EBPF_JMP_JLT: return CC_B;
    case EBPF_JMP_JLE: return CC_BE;
    case EBPF_JMP_JSGT: return CC_G;
    case EBPF_JMP_JSGE: return CC_GE;
    case EBPF_JMP_JSLT: return CC_L;
    default: return CC_LE;
    }
}

/* Conditional and unconditional jumps: the taken path spends and checks the budget. */
static void jump(struct x86 *x, uint32_t pc, const struct ebpf_insn *in)
{
    struct fovm_jit *j = x->j;
    unsigned op = in->code & EBPF_OP_MASK;
    int w = (in->code & EBPF_CLS_MASK) == EBPF_CLS_JMP, k = !(in->code & EBPF_SRC_X);
    uint32_t target = pc + 1 + (uint32_t)(in->code == EBPF_OP_JA32 ? in->imm : in->off), seg;
    size_t skip = 0;
    if (op != EBPF_JMP_JA) {
        if (op == EBPF_JMP_JSET && k) {
            rex(j, w, 0, D(in), 0);
            b(j, 0xf7), b(j, 0xc0u | (unsigned)(D(in) & 7)), d32(j, (uint32_t)in->imm);
        } else if (op == EBPF_JMP_JSET) {
            rr(j, w, 0x85, S(in), D(in));
        } else if (k) {
            alu_imm(j, w, 7, D(in), in->imm);
        } else {
            rr(j, w, 0x39, S(in), D(in));
        }
        skip = jcc8(j, jump_cc(op) ^ 1);
    }
    seg = x->seg;
    spend(x, pc + 1);
    budget_check(x, pc);
    fovm_jit_add_fix(j, (uint32_t)jmp32(j), target);
    if (op != EBPF_JMP_JA) {
        here8(j, skip);
        x->seg = seg; /* not taken: counted at the next jump, as the interpreter does */
    }
}

static void exit_insn(struct x86 *x, uint32_t pc)
{
    struct fovm_jit *j = x->j;
    size_t sub;
    spend(x, pc + 1);
    budget_check(x, pc);
    alu_run(j, 7, RUNF(jit_depth), 0);
    sub = jcc8(j, CC_NE);
    mem(j, 1, 0, 0x89, RAX, R12, RUNF(jit_regs), 0);
    rr(j, 0, 0x31, RAX, RAX);
    jmp_to(j, x->epilogue);
    here8(j, sub);
    b(j, 0xc3); /* back to the local call */
}

/* stack_lo and stack_len of the frame rbp points at */
static void frame_bounds(struct fovm_jit *j)
{
    mem(j, 1, 0, 0x8d, R11, RBP, -EBPF_STACK_SIZE, 0);
    mem(j, 1, 0, 0x89, R11, R12, RUNF(stack_lo), 0);
    mem(j, 1, 0, 0x8b, R10, R12, RUNF(stack_top), 0);
    rr(j, 1, 0x29, R11, R10);
    mem(j, 1, 0, 0x89, R10, R12, RUNF(stack_len), 0);
}

static void local_call(struct x86 *x, uint32_t pc, const struct ebpf_insn *in)
{
    struct fovm_jit *j = x->j;
    size_t ok;
    int i;
    alu_run(j, 7, RUNF(jit_depth), FOVM_MAX_CALL_DEPTH);
    ok = jcc8(j, CC_B);
    leave(x, FOVM_JIT_DEPTH, pc, j->pre[pc + 1] - j->pre[x->seg]);
    here8(j, ok);
    spend(x, pc + 1);
    budget_check(x, pc);
    mem(j, 1, 0, 0xff, 0, R12, RUNF(jit_depth), 0); /* inc */
    push(j, RBX), push(j, R13), push(j, R14), push(j, R15);
    alu_imm(j, 1, 5, RSP, 8);
    alu_imm(j, 1, 5, RBP, EBPF_STACK_SIZE);
    frame_bounds(j);
    b(j, 0x66), b(j, 0x0f), b(j, 0xef), b(j, 0xc0); /* pxor xmm0, xmm0 */
    for (i = 0; i < EBPF_STACK_SIZE; i += 16)
        mem(j, 0, 0, 0x0f11, 0, R11, i, 0); /* movups [r11 + i], xmm0 */
    b(j, 0xe8);
    d32(j, 0);
    fovm_jit_add_fix(j, (uint32_t)(j->len - 4), pc + 1 + (uint32_t)in->imm);
    alu_imm(j, 1, 0, RSP, 8);
    pop(j, R15), pop(j, R14), pop(j, R13), pop(j, RBX);
    alu_imm(j, 1, 0, RBP, EBPF_STACK_SIZE);
    frame_bounds(j);
    mem(j, 1, 0, 0xff, 1, R12, RUNF(jit_depth), 0); /* dec */
}

/* Helpers through fovm_jit_call; r1-r5 keep their values, as in the interpreter. */
static void helper_call(struct x86 *x, uint32_t pc, const struct ebpf_insn *in)
{
    struct fovm_jit *j = x->j;
    struct fixups slow = {{0}, 0}, done = {{0}, 0};
    if (in->code == EBPF_OP_CALL && in->imm == 1 && fovm_helper_get(j->vm, 1)->builtin) {
        /* the built-in map_lookup_elem(r1 map, r2 key) */
        if (j->r1_map >= 0 && j->vm->maps[j->r1_map]->info.type == FOVM_MAP_ARRAY) {
            lookup_inline(j, j->vm->maps[j->r1_map], &slow, &done);
            place(j, &slow);
        }
        spill(j, 1, 5, 0);
        rr(j, 1, 0x89, RSI, RDX);
        mov_imm32(j, RCX, pc);
        if (j->r1_map >= 0) {
            struct fovm_map *m = j->vm->maps[j->r1_map];
            uint64_t a;
            fovm_copy(&a, &m, sizeof a);
            mov_imm64(j, RSI, a);
            rr(j, 1, 0x89, R12, RDI);
            CALL_C(j, fovm_jit_lookup_map);
        } else {
            rr(j, 1, 0x89, RDI, RSI);
            rr(j, 1, 0x89, R12, RDI);
            CALL_C(j, fovm_jit_lookup);
        }
        status_check(x, pc);
        spill(j, 0, 5, 1);
        place(j, &done);
        return;
    }
    spill(j, 1, 5, 0);
    if (in->code == EBPF_OP_CALLX)
        rr(j, 1, 0x89, D(in), RSI);
    else
        mov_imm32(j, RSI, (uint32_t)in->imm);
    mov_imm32(j, RDX, pc);
    rr(j, 1, 0x89, R12, RDI);
    CALL_C(j, fovm_jit_call);
    status_check(x, pc);
    spill(j, 0, 5, 1);
}

/* The trampoline to fovm_jit_mem (r11 address, r10d packed; result in r10d; eBPF registers
 * kept), the error exit (r10d status, r11d pc, r9 instructions not yet counted), the
 * epilogue, and the entry. */
static void fixed(struct x86 *x)
{
    struct fovm_jit *j = x->j;
    static const uint8_t saved[] = {RAX, RDI, RSI, RDX, RCX, R8, R11};
    static const uint8_t callee[] = {RBP, RBX, R12, R13, R14, R15};
    static const uint8_t zeroed[] = {RAX, RDX, RCX, R8, RBX, R13, R14, R15};
    int i;
    x->tramp_mem = j->len;
    for (i = 0; i < 7; i++)
        push(j, saved[i]);
    rr(j, 1, 0x89, R12, RDI);
    rr(j, 1, 0x89, R11, RSI);
    rr(j, 0, 0x89, R10, RDX);
    CALL_C(j, fovm_jit_mem);
    rr(j, 0, 0x89, RAX, R10);
    for (i = 6; i >= 0; i--)
        pop(j, saved[i]);
    b(j, 0xc3);
    x->err_exit = j->len;
    mem(j, 1, 0, 0x29, R9, R12, RUNF(jit_rem), 0);
    mem(j, 0, 0, 0x89, R11, R12, RUNF(pc), 0);
    rr(j, 0, 0x89, R10, RAX);
    x->epilogue = j->len;
    mem(j, 1, 0, 0x8b, RSP, R12, RUNF(jit_saved_sp), 0);
    alu_imm(j, 1, 0, RSP, 8);
    for (i = 5; i >= 0; i--)
        pop(j, callee[i]);
    b(j, 0xc3);
    j->entry = j->len;
    for (i = 0; i < 6; i++)
        push(j, callee[i]);
    alu_imm(j, 1, 5, RSP, 8);
    rr(j, 1, 0x89, RDI, R12);
    mem(j, 1, 0, 0x89, RSP, R12, RUNF(jit_saved_sp), 0);
    mem(j, 1, 0, 0x8b, RDI, R12, RUNF(ctx), 0);
    mem(j, 1, 0, 0x8b, RSI, R12, RUNF(ctx_len), 0);
    mem(j, 1, 0, 0x8b, RBP, R12, RUNF(stack_top), 0);
    for (i = 0; i < 8; i++)
        rr(j, 0, 0x31, zeroed[i], zeroed[i]);
}

/* Which map r1 holds after the instruction at pc, when an lddw of this straight run put it
 * there (helper calls keep r1 in this VM). */
static void track_r1(struct fovm_jit *j, uint32_t pc, const struct ebpf_insn *in)
{
    unsigned cls = in->code & EBPF_CLS_MASK;
    if (in->code == EBPF_OP_LDDW && EBPF_DST(in) == 1) {
        j->r1_map = fovm_jit_lddw_map(j->vm, pc);
    } else if (((cls == EBPF_CLS_ALU || cls == EBPF_CLS_ALU64 || cls == EBPF_CLS_LDX) &&
                EBPF_DST(in) == 1) ||
               in->code == EBPF_OP_ATOMIC_W || in->code == EBPF_OP_ATOMIC_DW ||
               (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL)) {
        j->r1_map = -1;
    }
}

void fovm_jit_emit(struct fovm_jit *j)
{
    struct x86 x;
    const struct ebpf_insn *insns = j->vm->insns;
    uint32_t pc, n = j->vm->ninsns;
    fovm_zero(&x, sizeof x);
    x.j = j;
    j->r1_map = -1;
    if (!fovm_jit_reserve(j, 1024))
        return;
    fixed(&x);
    for (pc = 0; pc < n && !j->failed; pc++) {
        const struct ebpf_insn *in = &insns[pc];
        unsigned cls = in->code & EBPF_CLS_MASK;
        if (!fovm_jit_reserve(j, 1024))
            return;
        if (j->label[pc]) {
            spend(&x, pc);
            j->r1_map = -1;
        }
        j->off[pc] = (uint32_t)j->len;
        if (cls == EBPF_CLS_ALU || cls == EBPF_CLS_ALU64) {
            alu(j, in);
        } else if (in->code == EBPF_OP_LDDW) {
            lddw(j, pc, in);
            pc++;
        } else if (in->code == EBPF_OP_ATOMIC_W || in->code == EBPF_OP_ATOMIC_DW) {
            atomic(&x, pc, in);
        } else if (cls == EBPF_CLS_LDX || cls == EBPF_CLS_ST || cls == EBPF_CLS_STX) {
            access(&x, pc, in);
        } else if (in->code == EBPF_OP_EXIT) {
            exit_insn(&x, pc);
        } else if (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL) {
            local_call(&x, pc, in);
            x.seg = pc + 1;
        } else if (in->code == EBPF_OP_CALL || in->code == EBPF_OP_CALLX) {
            helper_call(&x, pc, in);
        } else if (cls == EBPF_CLS_JMP || cls == EBPF_CLS_JMP32) {
            jump(&x, pc, in);
        } else {
            j->failed = 1;
        }
        track_r1(j, (uint32_t)(in - insns), in);
    }
}

#endif /* FOVM_JIT_X86_ALU_H */
