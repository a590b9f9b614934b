/*
 * One fovm_exec call: the run's state, the engine (native code or the interpreter), and the
 * zero-copy protocol for maps in shared storage.
 *
 * Zero-copy: while a program has shown no side effect, a run reads shared map rows in place
 * (no snapshot copy) and works on a private copy of the context. Each shared map's sequence
 * number is recorded at its first lookup; when the program ends (exit, fault or budget), the
 * run counts only if no writer touched those maps meanwhile; otherwise it runs again on a
 * fresh copy of the caller's context. So the caller never sees a result computed from a torn
 * row, and writers (the store, in another process) never wait for readers. A program that
 * tries a side effect (a store outside its context and stack, an atomic, a helper other than
 * lookup, ktime, prandom) is restarted before the effect happens and from then on runs with
 * snapshot copies, which never need repeating.
 */
#include "maps.h"

/* Zeroes the 512-byte frame. On x86-64 with explicit 16-byte stores: compilers turn the
 * plain loop into `rep stos`, whose start-up cost was half of an empty program's run. */
static void zero_frame(uint8_t *p)
{
    unsigned i;
#if defined(__GNUC__) && defined(__x86_64__)
    typedef long long fovm_v2 __attribute__((vector_size(16)));
    fovm_v2 z = {0, 0};
    for (i = 0; i < EBPF_STACK_SIZE; i += 64)
        __asm__ volatile("movups %1, (%0)\n\tmovups %1, 16(%0)\n\t"
                         "movups %1, 32(%0)\n\tmovups %1, 48(%0)"
                         :
                         : "r"(p + i), "x"(z)
                         : "memory");
#else
    for (i = 0; i < EBPF_STACK_SIZE / 8; i++)
        ((uint64_t *)(void *)p)[i] = 0;
#endif
}

static void run_init(struct fovm_run *run, struct fovm_vm *vm, void *ctx, size_t ctx_len,
                     fovm_error *err, int zc)
{
    run->vm = vm;
    run->err = err;
    run->ctx = (uintptr_t)ctx;
    run->ctx_len = ctx_len;
    run->stack_top = (uintptr_t)(run->stack + sizeof run->stack / 8);
    run->stack_lo = run->stack_top - EBPF_STACK_SIZE;
    run->stack_len = EBPF_STACK_SIZE;
    run->pc = 0;
    run->nret = 0;
    run->hot_base = 0;
    run->hot_len = 0;
    run->hot_writable = 0;
    run->hot2_base = 0;
    run->hot2_len = 0;
    run->hot2_writable = 0;
    run->scratch_used = 0;
    run->scratch_lazy = 0;
    run->forgot = 0;
    run->zc = zc;
    run->restart = 0;
    run->nseen = 0;
    run->nwhole = 0;
    run->whole[0].map = NULL; /* native code's inline lookup tests it alone */
    zero_frame((uint8_t *)run->stack_lo);
}

static int engine(struct fovm_run *run, uint64_t *r0, uint64_t *executed)
{
#if FOVM_HAVE_JIT
    if (run->vm->jit)
        return fovm_jit_run(run, r0, executed);
#endif
    return fovm_interp(run, r0, executed);
}

/* Whether every shared map the run read in place is unchanged since its first lookup. */
static int seen_unchanged(const struct fovm_run *run)
{
    unsigned i;
    for (i = 0; i < run->nseen; i++)
        if (fovm_read_retry(run->seen[i].map, run->seen[i].seq))
            return 0;
    return 1;
}

static void set_zc_off(struct fovm_vm *vm)
{
#if FOVM_ATOMICS
    __atomic_store_n(&vm->zc_off, 1, __ATOMIC_RELAXED);
#else
    vm->zc_off = 1;
#endif
}

static int zc_allowed(const struct fovm_vm *vm, size_t ctx_len)
{
#if FOVM_ATOMICS
    int off = __atomic_load_n(&vm->zc_off, __ATOMIC_RELAXED);
#else
    int off = vm->zc_off;
#endif
    return vm->nshared && !off && ctx_len <= FOVM_ZC_CTX_MAX;
}

int fovm_exec_counted(fovm_vm *vm, void *ctx, size_t ctx_len, uint64_t *r0, uint64_t *executed,
                      fovm_error *err)
{
    struct fovm_run run;
    unsigned tries;
    if (!vm || (!ctx && ctx_len))
        return fovm_fail(err, FOVM_E_INVAL, -1, "no vm, or a context length without a context");
    if (!vm->insns)
        return fovm_fail(err, FOVM_E_STATE, -1, "no program is loaded");
    for (tries = 0; tries < FOVM_ZC_TRIES && zc_allowed(vm, ctx_len); tries++) {
        uint64_t copy[FOVM_ZC_CTX_MAX / 8], v = 0, n = 0;
        int rc;
        if (ctx_len)
            fovm_copy(copy, ctx, ctx_len);
        run_init(&run, vm, ctx_len ? copy : NULL, ctx_len, err, 1);
        rc = engine(&run, &v, &n);
        if (rc == FOVM_RESTART && run.restart) {
            set_zc_off(vm); /* side effects: this program runs with snapshot copies */
            break;
        }
        if (!seen_unchanged(&run))
            continue; /* a writer changed a row this run read: the result does not count */
        if (ctx_len)
            fovm_copy(ctx, copy, ctx_len);
        if (executed)
            *executed = n;
        if (!rc && r0)
            *r0 = v;
        return rc;
    }
    run_init(&run, vm, ctx, ctx_len, err, 0);
    return engine(&run, r0, executed);
}

int fovm_exec(fovm_vm *vm, void *ctx, size_t ctx_len, uint64_t *r0, fovm_error *err)
{
    return fovm_exec_counted(vm, ctx, ctx_len, r0, NULL, err);
}
