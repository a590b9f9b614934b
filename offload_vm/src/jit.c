/*
 * The JIT's portable half: choosing the engine, executable memory (W^X: written while
 * read-write, then made read-execute; any refusal means the interpreter, silently), running
 * native code, and the C functions native code calls for what it does not inline (bounds
 * checks outside the context, stack and last region; helpers; atomics).
 *
 * Native code keeps every rule of the interpreter: registers zeroed at entry, the same
 * bounds checks, the same budget counted the same way (faults report the same PC and count),
 * division by zero as RFC 9669 says, faults returned with PC and code.
 */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c99 */
#endif
#include "jit.h"

#if __STDC_HOSTED__
#include <stdlib.h>
#endif

int fovm_set_engine(fovm_vm *vm, int engine)
{
    if (!vm || (engine != FOVM_ENGINE_AUTO && engine != FOVM_ENGINE_INTERP))
        return FOVM_E_INVAL;
    vm->engine = engine;
#if FOVM_HAVE_JIT
    fovm_jit_free(vm);
    if (vm->insns)
        fovm_jit_compile(vm);
#endif
    return FOVM_OK;
}

int fovm_engine(const fovm_vm *vm)
{
    if (!vm || !vm->insns)
        return 0;
    return vm->jit ? FOVM_ENGINE_JIT : FOVM_ENGINE_INTERP;
}

#if FOVM_HAVE_JIT
#include <sys/mman.h>

int fovm_jit_reserve(struct fovm_jit *j, size_t n)
{
    uint8_t *bigger;
    if (j->cap - j->len >= n)
        return 1;
    bigger = (uint8_t *)realloc(j->buf, j->cap * 2 + n);
    if (!bigger) {
        j->failed = 1;
        return 0;
    }
    j->buf = bigger;
    j->cap = j->cap * 2 + n;
    return 1;
}

void fovm_jit_add_fix(struct fovm_jit *j, uint32_t at, uint32_t pc)
{
    if (j->nfix == j->capfix) {
        size_t cap = j->capfix ? j->capfix * 2 : 64;
        struct fovm_jit_fix *f = (struct fovm_jit_fix *)realloc(j->fix, cap * sizeof *f);
        if (!f) {
            j->failed = 1;
            return;
        }
        j->fix = f;
        j->capfix = cap;
    }
    j->fix[j->nfix].at = at;
    j->fix[j->nfix].pc = pc;
    j->nfix++;
}

/* Jump and call targets, and the instruction count before each slot. */
static void analyse(struct fovm_jit *j)
{
    const struct fovm_vm *vm = j->vm;
    uint32_t pc, n = vm->ninsns, count = 0;
    for (pc = 0; pc < n; pc++) {
        const struct ebpf_insn *in = &vm->insns[pc];
        unsigned cls = in->code & EBPF_CLS_MASK, op = in->code & EBPF_OP_MASK;
        int64_t target = -1;
        j->pre[pc] = count++;
        if (in->code == EBPF_OP_LDDW) {
            j->pre[++pc] = count;
            continue;
        }
        if (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL)
            target = (int64_t)pc + 1 + in->imm;
        else if (in->code == EBPF_OP_JA32)
            target = (int64_t)pc + 1 + in->imm;
        else if ((cls == EBPF_CLS_JMP || cls == EBPF_CLS_JMP32) && op != EBPF_JMP_CALL &&
                 op != EBPF_JMP_EXIT)
            target = (int64_t)pc + 1 + in->off;
        if (target >= 0 && target < (int64_t)n)
            j->label[target] = 1;
    }
    j->pre[n] = count;
}

static void jit_release(struct fovm_jit *j)
{
    free(j->buf);
    free(j->off);
    free(j->pre);
    free(j->label);
    free(j->fix);
    free(j->facts);
}

void fovm_jit_compile(struct fovm_vm *vm)
{
    struct fovm_jit j;
    const char *env = getenv("FOVM_JIT");
    size_t i, size;
    void *mem;
    vm->jit = NULL;
    if (vm->engine == FOVM_ENGINE_INTERP || (env && env[0] == '0') || !vm->insns)
        return;
    fovm_zero(&j, sizeof j);
    j.vm = vm;
    j.cap = (size_t)vm->ninsns * 48 + 4096;
    j.buf = (uint8_t *)malloc(j.cap);
    j.off = (uint32_t *)calloc(vm->ninsns + 1, sizeof *j.off);
    j.pre = (uint32_t *)calloc(vm->ninsns + 1, sizeof *j.pre);
    j.label = (uint8_t *)calloc(vm->ninsns + 1, 1);
    if (!j.buf || !j.off || !j.pre || !j.label) {
        jit_release(&j);
        return;
    }
    analyse(&j);
    j.facts = fovm_jit_facts(vm, j.label);
    fovm_jit_emit(&j);
    for (i = 0; !j.failed && i < j.nfix; i++) {
        int64_t rel = (int64_t)j.off[j.fix[i].pc] - ((int64_t)j.fix[i].at + 4);
        uint32_t v = (uint32_t)(int32_t)rel;
        fovm_copy(j.buf + j.fix[i].at, &v, 4);
    }
    size = (j.len + 4095) & ~(size_t)4095;
    mem = j.failed ? MAP_FAILED
                   : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) {
        fovm_copy(mem, j.buf, j.len);
        if (mprotect(mem, size, PROT_READ | PROT_EXEC) == 0) {
            vm->jit = (uint8_t *)mem + j.entry;
            vm->jit_base = mem;
            vm->jit_len = size;
        } else {
            munmap(mem, size);
        }
    }
    jit_release(&j);
}

void fovm_jit_free(struct fovm_vm *vm)
{
    if (vm->jit_base)
        munmap(vm->jit_base, vm->jit_len);
    vm->jit = NULL;
    vm->jit_base = NULL;
    vm->jit_len = 0;
}

typedef int (*fovm_native_fn)(struct fovm_run *run);

int fovm_jit_run(struct fovm_run *run, uint64_t *r0, uint64_t *executed)
{
    const struct fovm_vm *vm = run->vm;
    uint64_t budget = vm->budget > FOVM_JIT_MAX_BUDGET ? FOVM_JIT_MAX_BUDGET : vm->budget;
    fovm_native_fn fn;
    int rc;
    run->jit_rem = budget;
    run->jit_depth = 0;
    fovm_copy(&fn, &vm->jit, sizeof fn); /* object to function pointer, without a cast */
    rc = fn(run);
    if (rc == FOVM_JIT_BUDGET) {
        if (executed)
            *executed = vm->budget;
        return fovm_fail_at(run->err, FOVM_E_BUDGET, run->pc,
                            "instruction budget of %U exhausted", vm->budget);
    }
    if (rc == FOVM_JIT_DEPTH)
        rc = fovm_fail_at(run->err, FOVM_E_FAULT, run->pc, "local calls nest deeper than %u",
                          FOVM_MAX_CALL_DEPTH);
    if (executed)
        *executed = budget - run->jit_rem;
    if (!rc && r0)
        *r0 = run->jit_regs[0];
    return rc;
}

int fovm_jit_mem(struct fovm_run *run, uint64_t addr, uint32_t packed)
{
    uint64_t n = packed & 15u;
    int write = (packed >> 4) & 1u;
    if (fovm_mem_ok(run, addr, n, write))
        return 0;
    if (run->restart)
        return FOVM_RESTART;
    return fovm_fail_at(run->err, FOVM_E_FAULT, (int)(packed >> 8),
                        "out-of-bounds %s of %U bytes at 0x%X", write ? "write" : "read", n, addr);
}

int fovm_jit_call(struct fovm_run *run, uint64_t id, uint32_t pc)
{
    const struct fovm_helper *h = fovm_helper_get(run->vm, id);
    if (!h)
        return fovm_fail_at(run->err, FOVM_E_HELPER, (int)pc, "callx to unknown helper %U", id);
    return fovm_call_helper(run, h, run->jit_regs + 1, &run->jit_regs[0], (int)pc);
}

/* map_lookup_elem (helper 1) while it is the built-in one (registering a helper compiles the
 * program again): lookup.c, the result in run->jit_regs[0]. */
int fovm_jit_lookup(struct fovm_run *run, uint64_t mp, uint64_t key, uint32_t pc)
{
    return fovm_lookup_any(run, mp, key, (int)pc, &run->jit_regs[0]);
}

/* The same where the code generator saw which map r1 holds (an lddw in the straight run). */
int fovm_jit_lookup_map(struct fovm_run *run, struct fovm_map *m, uint64_t key, uint32_t pc)
{
    return fovm_lookup_map(run, m, key, (int)pc, &run->jit_regs[0]);
}

/* An atomic instruction, on the registers native code stored in run->jit_regs. */
int fovm_jit_atomic(struct fovm_run *run, uint64_t addr, uint32_t pc)
{
    const struct ebpf_insn *in = &run->vm->insns[pc];
    int wide = in->code == EBPF_OP_ATOMIC_DW;
    uint64_t n = wide ? 8 : 4, old, *reg = run->jit_regs;
    if (!fovm_mem_ok(run, addr, n, 1)) {
        if (run->restart)
            return FOVM_RESTART;
        return fovm_fail_at(run->err, FOVM_E_FAULT, (int)pc,
                            "out-of-bounds write of %U bytes at 0x%X", n, addr);
    }
    if (addr & (n - 1))
        return fovm_fail_at(run->err, FOVM_E_FAULT, (int)pc, "misaligned atomic access at 0x%X",
                            addr);
    old = fovm_atomic_rmw((uintptr_t)addr, wide, in->imm, reg[EBPF_SRC(in)], &reg[0]);
    if (in->imm & EBPF_ATOMIC_FETCH && in->imm != EBPF_ATOMIC_CMPXCHG)
        reg[EBPF_SRC(in)] = wide ? old : (uint32_t)old;
    return 0;
}
#endif /* FOVM_HAVE_JIT */
