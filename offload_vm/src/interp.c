/*
 * The interpreter: threaded (computed goto) under GCC and clang, a switch elsewhere.
 * Programs arrive verified; every memory access is still checked here against the regions
 * the program may touch, and every instruction spends budget.
 */
#include "fovm_int.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fovm runs eBPF on little-endian hosts only"
#endif

#if defined(__GNUC__) && !defined(FOVM_NO_THREADED)
#define FOVM_THREADED 1
#else
#define FOVM_THREADED 0
#endif

#define IN_RANGE(a, n, base, len)                                                                 \
    ((a) >= (uint64_t)(base) && (uint64_t)(len) >= (n) &&                                         \
     (a) - (uint64_t)(base) <= (uint64_t)(len) - (n))

static uint16_t swap16(uint16_t v) { return (uint16_t)((v >> 8) | (v << 8)); }
static uint32_t swap32(uint32_t v)
{
    return ((v & 0xffu) << 24) | ((v & 0xff00u) << 8) | ((v >> 8) & 0xff00u) | (v >> 24);
}
static uint64_t swap64(uint64_t v) { return ((uint64_t)swap32((uint32_t)v) << 32) | swap32((uint32_t)(v >> 32)); }

static uint64_t udiv64(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static uint64_t umod64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static uint32_t udiv32(uint32_t a, uint32_t b) { return b ? a / b : 0; }
static uint32_t umod32(uint32_t a, uint32_t b) { return b ? a % b : a; }
static uint64_t sdiv64(uint64_t a, uint64_t b)
{
    if (!b)
        return 0;
    return b == ~(uint64_t)0 ? 0 - a : (uint64_t)((int64_t)a / (int64_t)b);
}
static uint64_t smod64(uint64_t a, uint64_t b)
{
    if (!b)
        return a;
    return b == ~(uint64_t)0 ? 0 : (uint64_t)((int64_t)a % (int64_t)b);
}
static uint32_t sdiv32(uint32_t a, uint32_t b)
{
    if (!b)
        return 0;
    return b == ~(uint32_t)0 ? 0 - a : (uint32_t)((int32_t)a / (int32_t)b);
}
static uint32_t smod32(uint32_t a, uint32_t b)
{
    if (!b)
        return a;
    return b == ~(uint32_t)0 ? 0 : (uint32_t)((int32_t)a % (int32_t)b);
}

/* Atomic read-modify-write of 4 or 8 bytes; returns the old value. */
uint64_t fovm_atomic_rmw(uintptr_t addr, int size8, int op, uint64_t v, uint64_t *r0)
{
    uint64_t old;
    if (size8) {
        uint64_t *p = (uint64_t *)addr;
#if FOVM_ATOMICS
        switch (op & ~EBPF_ATOMIC_FETCH) {
        case EBPF_ATOMIC_ADD: return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_OR: return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_AND: return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_XOR: return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_XCHG & ~EBPF_ATOMIC_FETCH: return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
        default:
            old = *r0;
            __atomic_compare_exchange_n(p, &old, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            *r0 = old;
            return old;
        }
#else
        old = *p;
        switch (op & ~EBPF_ATOMIC_FETCH) {
        case EBPF_ATOMIC_ADD: *p = old + v; break;
        case EBPF_ATOMIC_OR: *p = old | v; break;
        case EBPF_ATOMIC_AND: *p = old & v; break;
        case EBPF_ATOMIC_XOR: *p = old ^ v; break;
        case EBPF_ATOMIC_XCHG & ~EBPF_ATOMIC_FETCH: *p = v; break;
        default:
            if (old == *r0)
                *p = v;
            *r0 = old;
        }
        return old;
#endif
    } else {
        uint32_t *p = (uint32_t *)addr, w = (uint32_t)v, o;
#if FOVM_ATOMICS
        switch (op & ~EBPF_ATOMIC_FETCH) {
        case EBPF_ATOMIC_ADD: return __atomic_fetch_add(p, w, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_OR: return __atomic_fetch_or(p, w, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_AND: return __atomic_fetch_and(p, w, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_XOR: return __atomic_fetch_xor(p, w, __ATOMIC_SEQ_CST);
        case EBPF_ATOMIC_XCHG & ~EBPF_ATOMIC_FETCH: return __atomic_exchange_n(p, w, __ATOMIC_SEQ_CST);
        default:
            o = (uint32_t)*r0;
            __atomic_compare_exchange_n(p, &o, w, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            *r0 = o;
            return o;
        }
#else
        o = *p;
        switch (op & ~EBPF_ATOMIC_FETCH) {
        case EBPF_ATOMIC_ADD: *p = o + w; break;
        case EBPF_ATOMIC_OR: *p = o | w; break;
        case EBPF_ATOMIC_AND: *p = o & w; break;
        case EBPF_ATOMIC_XOR: *p = o ^ w; break;
        case EBPF_ATOMIC_XCHG & ~EBPF_ATOMIC_FETCH: *p = w; break;
        default:
            if (o == (uint32_t)*r0)
                *p = w;
            *r0 = o;
        }
        (void)old;
        return o;
#endif
    }
}

/* Zero-copy runs keep the hot region read-only, so every write outside the context copy and
 * the stack reaches fovm_mem_ok, which restarts the run with snapshot copies. */
static int remember(struct fovm_run *run, const struct fovm_region *r)
{
    fovm_set_hot(run, r->base, r->len, r->writable && !run->zc);
    return 1;
}

/* Memory a helper returned: the program may touch it for the rest of the run (the last
 * FOVM_MAX_RUN_REGIONS of them), and most likely touches it next. */
int fovm_run_region(struct fovm_run *run, const void *base, size_t len, int writable)
{
    struct fovm_region *r = &run->ret[run->nret++ % FOVM_MAX_RUN_REGIONS];
    r->base = (uintptr_t)base;
    r->len = len;
    r->writable = writable;
    remember(run, r);
    return 0;
}

/* The slow path of the bounds check: memory helpers returned, then array map values. */
int fovm_mem_ok(struct fovm_run *run, uint64_t addr, uint64_t len, int write)
{
    unsigned i, n = run->nret < FOVM_MAX_RUN_REGIONS ? run->nret : FOVM_MAX_RUN_REGIONS;
    const struct fovm_vm *vm = run->vm;
    if (IN_RANGE(addr, len, run->ctx, run->ctx_len) ||
        IN_RANGE(addr, len, run->stack_lo, run->stack_top - run->stack_lo) ||
        IN_RANGE(addr, len, (uintptr_t)run->scratch, run->scratch_used) ||
        fovm_whole_fill(run, addr, len))
        return 1;
    if (run->zc && write) { /* a side effect: this run cannot be repeated if a row tears */
        run->restart = 1;
        return 0;
    }
    for (i = 0; i < n; i++)
        if (IN_RANGE(addr, len, run->ret[i].base, run->ret[i].len) &&
            (!write || run->ret[i].writable))
            return remember(run, &run->ret[i]);
    for (i = 0; i < vm->nregions; i++)
        if (IN_RANGE(addr, len, vm->regions[i].base, vm->regions[i].len) &&
            (!write || vm->regions[i].writable))
            return remember(run, &vm->regions[i]);
    return 0;
}

/* Helpers a zero-copy run may call: they change nothing a repeated run would see twice
 * (prandom's counter only advances). */
static int zc_pure(const struct fovm_run *run, const struct fovm_helper *h)
{
    return h->builtin && (h->id == 1 || h->id == 5 || h->id == 7 ||
                          (h->id == 6 && !run->vm->trace));
}

int fovm_call_helper(struct fovm_run *run, const struct fovm_helper *h, const uint64_t *args,
                     uint64_t *ret, int pc)
{
    int rc;
    *ret = 0;
    run->pc = pc;
    if (run->zc && !zc_pure(run, h)) {
        run->restart = 1;
        return FOVM_RESTART;
    }
    if (h->builtin)
        rc = h->builtin(run, args, ret);
    else if ((rc = h->fn(h->user, args[0], args[1], args[2], args[3], args[4], ret)) != 0)
        rc = fovm_fail_at(run->err, FOVM_E_HELPER, pc, "helper %u (%s) failed with status %d",
                          h->id, h->name, rc);
    return rc;
}

#include "interp_loop.h"
