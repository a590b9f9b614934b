/*
 * The dispatch loop of the interpreter, included once by interp.c (kept apart to keep files
 * short). Handlers are written once; LBL/NEXT make them computed-goto targets or switch cases.
 */
#ifndef FOVM_INTERP_LOOP_H
#define FOVM_INTERP_LOOP_H

#define D EBPF_DST(insn)
#define S EBPF_SRC(insn)
#define IMM (insn->imm)
#define OFF (insn->off)
#define IMM64 ((uint64_t)(int64_t)insn->imm)

/* The budget is spent per straight-line run: every taken jump, call and exit adds the
 * instructions since the run began and checks the total, so loops cannot outlive it. */
#define SPEND()                                                                                   \
    do {                                                                                          \
        used += (uint64_t)(insn - blk) + 1;                                                       \
        if (FOVM_UNLIKELY(used > budget))                                                         \
            goto out_budget;                                                                      \
    } while (0)
#define TAKE(delta)                                                                               \
    do {                                                                                          \
        SPEND();                                                                                  \
        insn += (delta);                                                                          \
        blk = insn + 1;                                                                           \
    } while (0)

#if FOVM_THREADED
#define LBL(name) L_##name:
#define DISPATCH() goto *labels[insn->code]
#define NEXT                                                                                      \
    do {                                                                                          \
        insn++;                                                                                   \
        DISPATCH();                                                                               \
    } while (0)
#else
#define LBL(name) case EBPF_OP_##name:
#define NEXT                                                                                      \
    {                                                                                             \
        insn++;                                                                                   \
        continue;                                                                                 \
    }
#endif

/* Bounds check: the context, the stack and the last two regions found inline, the rest in
 * fovm_mem_ok. */
#define CHECK(a, n, w)                                                                            \
    do {                                                                                          \
        if (FOVM_UNLIKELY(!IN_RANGE(a, n, ctx_b, ctx_l) && !IN_RANGE(a, n, stk_lo, stk_len) &&    \
                          !(IN_RANGE(a, n, run->hot_base, run->hot_len) &&                        \
                            (!(w) || run->hot_writable)) &&                                       \
                          !(IN_RANGE(a, n, run->hot2_base, run->hot2_len) &&                      \
                            (!(w) || run->hot2_writable)) &&                                      \
                          !fovm_mem_ok(run, a, n, w))) {                                          \
            fault_addr = (a);                                                                     \
            fault_len = (n);                                                                      \
            fault_write = (w);                                                                    \
            goto out_mem;                                                                         \
        }                                                                                         \
    } while (0)

#define LOAD(T, CONV)                                                                             \
    {                                                                                             \
        uint64_t a = reg[S] + (uint64_t)(int64_t)OFF;                                             \
        T v;                                                                                      \
        CHECK(a, sizeof(T), 0);                                                                   \
        FOVM_MEMCPY(&v, (const void *)(uintptr_t)a, sizeof v);                                    \
        reg[D] = CONV v;                                                                          \
        NEXT;                                                                                     \
    }
#define STORE(T, VAL)                                                                             \
    {                                                                                             \
        uint64_t a = reg[D] + (uint64_t)(int64_t)OFF;                                             \
        T v = (T)(VAL);                                                                           \
        CHECK(a, sizeof(T), 1);                                                                   \
        FOVM_MEMCPY((void *)(uintptr_t)a, &v, sizeof v);                                          \
        NEXT;                                                                                     \
    }

#define ALU_BIN(NAME, OP)                                                                         \
    LBL(NAME##64_IMM) { reg[D] = reg[D] OP IMM64; NEXT; }                                         \
    LBL(NAME##64_REG) { reg[D] = reg[D] OP reg[S]; NEXT; }                                        \
    LBL(NAME##32_IMM) { reg[D] = (uint32_t)((uint32_t)reg[D] OP (uint32_t)IMM); NEXT; }           \
    LBL(NAME##32_REG) { reg[D] = (uint32_t)((uint32_t)reg[D] OP (uint32_t)reg[S]); NEXT; }

#define ALU_SHIFT(NAME, OP)                                                                       \
    LBL(NAME##64_IMM) { reg[D] = reg[D] OP (IMM & 63); NEXT; }                                    \
    LBL(NAME##64_REG) { reg[D] = reg[D] OP (reg[S] & 63); NEXT; }                                 \
    LBL(NAME##32_IMM) { reg[D] = (uint32_t)((uint32_t)reg[D] OP (IMM & 31)); NEXT; }              \
    LBL(NAME##32_REG) { reg[D] = (uint32_t)((uint32_t)reg[D] OP (reg[S] & 31)); NEXT; }

#define ALU_DIV(NAME, U64, S64, U32, S32)                                                         \
    LBL(NAME##64_IMM) { reg[D] = OFF ? S64(reg[D], IMM64) : U64(reg[D], IMM64); NEXT; }           \
    LBL(NAME##64_REG) { reg[D] = OFF ? S64(reg[D], reg[S]) : U64(reg[D], reg[S]); NEXT; }         \
    LBL(NAME##32_IMM)                                                                             \
    {                                                                                             \
        uint32_t x = (uint32_t)reg[D], y = (uint32_t)IMM;                                         \
        reg[D] = OFF ? S32(x, y) : U32(x, y);                                                     \
        NEXT;                                                                                     \
    }                                                                                             \
    LBL(NAME##32_REG)                                                                             \
    {                                                                                             \
        uint32_t x = (uint32_t)reg[D], y = (uint32_t)reg[S];                                      \
        reg[D] = OFF ? S32(x, y) : U32(x, y);                                                     \
        NEXT;                                                                                     \
    }

#define JMP_CMP(NAME, T, T32, OP)                                                                 \
    LBL(NAME##64_IMM) { if ((T)reg[D] OP (T)IMM64) TAKE(OFF); NEXT; }                             \
    LBL(NAME##64_REG) { if ((T)reg[D] OP (T)reg[S]) TAKE(OFF); NEXT; }                            \
    LBL(NAME##32_IMM) { if ((T32)(uint32_t)reg[D] OP (T32)(uint32_t)IMM) TAKE(OFF); NEXT; }       \
    LBL(NAME##32_REG) { if ((T32)(uint32_t)reg[D] OP (T32)(uint32_t)reg[S]) TAKE(OFF); NEXT; }

int fovm_interp(struct fovm_run *run, uint64_t *r0, uint64_t *executed)
{
    const struct fovm_vm *vm = run->vm;
    const struct ebpf_insn *const base = vm->insns;
    const struct ebpf_insn *insn = base;
    const uint64_t budget = vm->budget;
    const struct ebpf_insn *blk = base; /* first instruction of the current straight run */
    uint64_t used = 0, reg[EBPF_NREGS], fault_addr = 0, fault_len = 0;
    const uint64_t ctx_b = run->ctx, ctx_l = run->ctx_len;
    uint64_t stk_lo = run->stack_lo, stk_len = run->stack_top - run->stack_lo;
    struct fovm_frame frames[FOVM_MAX_CALL_DEPTH];
    unsigned depth = 0, i;
    int fault_write = 0, rc = 0;
    /* the built-in map_lookup_elem: called without the helper dispatch */
    const int direct_lookup = vm->helper_slot[1] >= 0 && vm->helpers[vm->helper_slot[1]].builtin;
#if FOVM_THREADED
#define TABLE_ENTRY(name, value) [value] = &&L_##name,
#ifdef __clang__
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
    static const void *const labels[256] = {[0 ... 255] = &&L_INVALID,
                                            EBPF_OPCODES(TABLE_ENTRY)};
#ifdef __clang__
#pragma clang diagnostic pop
#else
#pragma GCC diagnostic pop
#endif
#endif
    for (i = 0; i < EBPF_NREGS; i++)
        reg[i] = 0;
    reg[1] = run->ctx;
    reg[2] = run->ctx_len;
    reg[10] = run->stack_top;
#if FOVM_THREADED
    DISPATCH();
#else
    for (;;) {
        switch (insn->code) {
#endif
    ALU_BIN(ADD, +)
    ALU_BIN(SUB, -)
    ALU_BIN(MUL, *)
    ALU_BIN(OR, |)
    ALU_BIN(AND, &)
    ALU_BIN(XOR, ^)
    ALU_SHIFT(LSH, <<)
    ALU_SHIFT(RSH, >>)
    ALU_DIV(DIV, udiv64, sdiv64, udiv32, sdiv32)
    ALU_DIV(MOD, umod64, smod64, umod32, smod32)
    LBL(ARSH64_IMM) { reg[D] = (uint64_t)((int64_t)reg[D] >> (IMM & 63)); NEXT; }
    LBL(ARSH64_REG) { reg[D] = (uint64_t)((int64_t)reg[D] >> (reg[S] & 63)); NEXT; }
    LBL(ARSH32_IMM) { reg[D] = (uint32_t)((int32_t)(uint32_t)reg[D] >> (IMM & 31)); NEXT; }
    LBL(ARSH32_REG) { reg[D] = (uint32_t)((int32_t)(uint32_t)reg[D] >> (reg[S] & 31)); NEXT; }
    LBL(NEG64) { reg[D] = 0 - reg[D]; NEXT; }
    LBL(NEG32) { reg[D] = (uint32_t)(0u - (uint32_t)reg[D]); NEXT; }
    LBL(MOV64_IMM) { reg[D] = IMM64; NEXT; }
    LBL(MOV32_IMM) { reg[D] = (uint32_t)IMM; NEXT; }
    LBL(MOV64_REG)
    {
        uint64_t v = reg[S];
        reg[D] = OFF == 0 ? v : OFF == 8 ? (uint64_t)(int64_t)(int8_t)v
                 : OFF == 16 ? (uint64_t)(int64_t)(int16_t)v : (uint64_t)(int64_t)(int32_t)v;
        NEXT;
    }
    LBL(MOV32_REG)
    {
        uint32_t v = (uint32_t)reg[S];
        reg[D] = OFF == 0 ? v : OFF == 8 ? (uint32_t)(int32_t)(int8_t)v : (uint32_t)(int32_t)(int16_t)v;
        NEXT;
    }
    LBL(LE)
    {
        reg[D] = IMM == 16 ? (uint16_t)reg[D] : IMM == 32 ? (uint32_t)reg[D] : reg[D];
        NEXT;
    }
    LBL(BE)
    LBL(BSWAP)
    {
        reg[D] = IMM == 16 ? swap16((uint16_t)reg[D])
                 : IMM == 32 ? swap32((uint32_t)reg[D]) : swap64(reg[D]);
        NEXT;
    }
    LBL(LDDW)
    {
        reg[D] = (uint64_t)(uint32_t)insn[0].imm | ((uint64_t)(uint32_t)insn[1].imm << 32);
        insn++;
        used--; /* two slots, one instruction */
        NEXT;
    }
    LBL(LDXB) LOAD(uint8_t, (uint64_t))
    LBL(LDXH) LOAD(uint16_t, (uint64_t))
    LBL(LDXW) LOAD(uint32_t, (uint64_t))
    LBL(LDXDW) LOAD(uint64_t, (uint64_t))
    LBL(LDXSB) LOAD(int8_t, (uint64_t)(int64_t))
    LBL(LDXSH) LOAD(int16_t, (uint64_t)(int64_t))
    LBL(LDXSW) LOAD(int32_t, (uint64_t)(int64_t))
    LBL(STB) STORE(uint8_t, IMM)
    LBL(STH) STORE(uint16_t, IMM)
    LBL(STW) STORE(uint32_t, IMM)
    LBL(STDW) STORE(uint64_t, IMM64)
    LBL(STXB) STORE(uint8_t, reg[S])
    LBL(STXH) STORE(uint16_t, reg[S])
    LBL(STXW) STORE(uint32_t, reg[S])
    LBL(STXDW) STORE(uint64_t, reg[S])
    LBL(ATOMIC_W)
    LBL(ATOMIC_DW)
    {
        int wide = insn->code == EBPF_OP_ATOMIC_DW;
        uint64_t a = reg[D] + (uint64_t)(int64_t)OFF, n = wide ? 8 : 4, old;
        CHECK(a, n, 1);
        if (FOVM_UNLIKELY(a & (n - 1))) {
            rc = fovm_fail_at(run->err, FOVM_E_FAULT, (int)(insn - base),
                              "misaligned atomic access at 0x%X", a);
            goto out;
        }
        old = fovm_atomic_rmw((uintptr_t)a, wide, IMM, reg[S], &reg[0]);
        if (IMM & EBPF_ATOMIC_FETCH && IMM != EBPF_ATOMIC_CMPXCHG)
            reg[S] = wide ? old : (uint32_t)old;
        NEXT;
    }
    LBL(JA) { TAKE(OFF); NEXT; }
    LBL(JA32) { TAKE(IMM); NEXT; }
    JMP_CMP(JEQ, uint64_t, uint32_t, ==)
    JMP_CMP(JNE, uint64_t, uint32_t, !=)
    JMP_CMP(JGT, uint64_t, uint32_t, >)
    JMP_CMP(JGE, uint64_t, uint32_t, >=)
    JMP_CMP(JLT, uint64_t, uint32_t, <)
    JMP_CMP(JLE, uint64_t, uint32_t, <=)
    JMP_CMP(JSGT, int64_t, int32_t, >)
    JMP_CMP(JSGE, int64_t, int32_t, >=)
    JMP_CMP(JSLT, int64_t, int32_t, <)
    JMP_CMP(JSLE, int64_t, int32_t, <=)
    LBL(JSET64_IMM) { if (reg[D] & IMM64) TAKE(OFF); NEXT; }
    LBL(JSET64_REG) { if (reg[D] & reg[S]) TAKE(OFF); NEXT; }
    LBL(JSET32_IMM) { if ((uint32_t)reg[D] & (uint32_t)IMM) TAKE(OFF); NEXT; }
    LBL(JSET32_REG) { if ((uint32_t)reg[D] & (uint32_t)reg[S]) TAKE(OFF); NEXT; }
    LBL(CALL)
    {
        if (S == EBPF_PSEUDO_CALL) {
            if (FOVM_UNLIKELY(depth >= FOVM_MAX_CALL_DEPTH)) {
                rc = fovm_fail_at(run->err, FOVM_E_FAULT, (int)(insn - base),
                                  "local calls nest deeper than %u", FOVM_MAX_CALL_DEPTH);
                goto out;
            }
            SPEND();
            frames[depth].ret = insn;
            for (i = 0; i < 4; i++)
                frames[depth].saved[i] = reg[6 + i];
            depth++;
            reg[10] -= EBPF_STACK_SIZE;
            stk_lo = reg[10] - EBPF_STACK_SIZE;
            stk_len = run->stack_top - stk_lo;
            for (i = 0; i < EBPF_STACK_SIZE / 8; i++)
                ((uint64_t *)(uintptr_t)stk_lo)[i] = 0;
            run->stack_lo = (uintptr_t)stk_lo;
            insn += IMM;
            blk = insn + 1;
            NEXT;
        }
        if (IMM == 1 && direct_lookup) {
            if ((rc = fovm_lookup_any(run, reg[1], reg[2], (int)(insn - base), &reg[0])) != 0)
                goto out;
            NEXT;
        }
        if ((rc = fovm_call_helper(run, &vm->helpers[(int)vm->helper_slot[IMM]], reg + 1,
                                   &reg[0], (int)(insn - base))) != 0)
            goto out;
        NEXT;
    }
    LBL(CALLX)
    {
        const struct fovm_helper *h = fovm_helper_get(vm, reg[D]);
        if (!h) {
            rc = fovm_fail_at(run->err, FOVM_E_HELPER, (int)(insn - base),
                              "callx to unknown helper %U", reg[D]);
            goto out;
        }
        if ((rc = fovm_call_helper(run, h, reg + 1, &reg[0], (int)(insn - base))) != 0)
            goto out;
        NEXT;
    }
    LBL(EXIT)
    {
        SPEND();
        if (depth == 0)
            goto out_exit;
        depth--;
        for (i = 0; i < 4; i++)
            reg[6 + i] = frames[depth].saved[i];
        reg[10] += EBPF_STACK_SIZE;
        stk_lo = reg[10] - EBPF_STACK_SIZE;
        stk_len = run->stack_top - stk_lo;
        run->stack_lo = (uintptr_t)stk_lo;
        insn = frames[depth].ret;
        blk = insn + 1;
        NEXT;
    }
#if FOVM_THREADED
L_INVALID:
#else
        default:
            break;
        }
#endif
    rc = fovm_fail_at(run->err, FOVM_E_FAULT, (int)(insn - base), "invalid opcode 0x%x",
                      insn->code);
    goto out;
#if !FOVM_THREADED
    }
#endif
out_budget:
    rc = fovm_fail_at(run->err, FOVM_E_BUDGET, (int)(insn - base),
                      "instruction budget of %U exhausted", budget);
    used = budget; /* all of it was spent */
    goto out_exit;
out_mem:
    if (run->restart) {
        rc = FOVM_RESTART;
        goto out;
    }
    rc = fovm_fail_at(run->err, FOVM_E_FAULT, (int)(insn - base),
                      "out-of-bounds %s of %U bytes at 0x%X", fault_write ? "write" : "read",
                      fault_len, fault_addr);
out:
    used += (uint64_t)(insn - blk) + 1; /* a fault or helper error ends the run mid-way */
out_exit:
    if (executed)
        *executed = used;
    if (!rc && r0)
        *r0 = reg[0];
    return rc;
}

#endif /* FOVM_INTERP_LOOP_H */
