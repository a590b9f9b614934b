/*
 * fohook_fixed: fixed hook points that run an offload policy inside firmware.
 *
 * Firmware (an RTOS build, a bare-metal loop) has no dynamic linker to hook through, so the
 * hook points are placed at build time, in two ways that run the same policy in our eBPF VM
 * (the sources offload_vm/src/ *.c compiled in with -DFOVM_STATIC):
 *
 * 1. By hand, at a function's entry:
 *
 *        int send_reading(fo_u32 sensor, fo_u32 value, fo_u32 link)
 *        {
 *            struct fohook_ctx c = FOHOOK_CTX3(sensor, value, link);
 *            if (FO_HOOK_POINT(send_reading, &c) == FOHOOK_DROP)
 *                return -1;
 *            value = (fo_u32)c.args[1];   // the policy may rewrite any argument
 *            link = (fo_u32)c.args[2];
 *            ...
 *
 *    The policy sees the arguments, may rewrite them in the context, and its return value is
 *    the verdict (FOHOOK_CONTINUE, FOHOOK_DROP, or anything the firmware gives a meaning).
 *
 * 2. From a list of function names, with no source change: a build step
 *    (firmware_hooks/fixed/hookgen.py, driven by examples/firmware/Makefile's
 *    `HOOK_FUNCTIONS = sample_sensor radio_tx`) reads each listed function's prototype from
 *    clang's parse of the source and compiles a copy of the source whose function bodies start
 *    with a generated hook point: the arguments (integers and pointers) go into args[], the
 *    policy runs with source FOHOOK_SRC_INSTRUMENT, rewritten arguments are written back to
 *    the parameters (not to const-qualified ones), and FOHOOK_DROP returns `ret` (cast to the
 *    function's return type) without running the body. Unlisted functions cost nothing.
 *
 * The policy is one program (the first program section of a clang -target bpf object) that
 * receives a struct fohook_ctx; `hook` tells the hook points apart: it is fohook_id(name),
 * the 32-bit FNV-1a hash of the hook point's name, which clang folds to a constant in a policy.
 *
 * Threads: the runtime is for a single-threaded firmware loop (or one task); the VM itself
 * may run from several threads, but the re-entrancy guard here is a plain flag.
 */
#ifndef FOHOOK_FIXED_H
#define FOHOOK_FIXED_H

#include <freeoffload/policy.h> /* fo_u32, fo_u64; in a policy also SEC, maps and helpers */

#define FOHOOK_MAX_ARGS 6

/* Where the call came from (fohook_ctx.source). */
#define FOHOOK_SRC_MACRO 1      /* FO_HOOK_POINT at a function's entry */
#define FOHOOK_SRC_INSTRUMENT 2 /* placed by the build from the name list (hookgen.py) */

/* Verdicts (a policy's r0). Other values pass through to the firmware unchanged. */
#define FOHOOK_CONTINUE 0 /* go on with the (possibly rewritten) arguments */
#define FOHOOK_DROP 1     /* the firmware should skip the call's work */
/* What FO_HOOK_POINT evaluates to when no policy is installed or the policy faulted: the
 * firmware goes on exactly as if there were no hook (fail open). */
#define FOHOOK_NO_POLICY FOHOOK_CONTINUE

/* The context of one hooked call: 88 bytes, host byte order, no padding. */
struct fohook_ctx {
    fo_u32 hook;      /* fohook_id() of the hook point's (or function's) name */
    fo_u32 source;    /* FOHOOK_SRC_MACRO or FOHOOK_SRC_INSTRUMENT */
    fo_u64 fn;        /* address of the hooked function (instrumented path), else 0 */
    fo_u64 call_site; /* return address of the hooked function's frame (instrumented path;
                         the caller's own when the compiler inlined the call), else 0 */
    fo_u32 nargs;     /* how many of args[] are the call's arguments */
    fo_u32 reserved;  /* zero */
    fo_u64 args[FOHOOK_MAX_ARGS]; /* the arguments, widened to 64 bits (signed integers sign-
                                     extended, pointers zero-extended); writable */
    fo_u64 ret;       /* with FOHOOK_DROP: what the call returns instead (instrumented path;
                         FO_HOOK_POINT leaves it to the firmware); writable, starts at 0 */
};

/* FNV-1a, 32 bit, of a NUL-terminated name. */
static inline __attribute__((always_inline)) fo_u32 fohook_id(const char *name)
{
    fo_u32 h = 2166136261u;
    while (*name) {
        h ^= (fo_u32)(unsigned char)*name++;
        h *= 16777619u;
    }
    return h;
}

#define FOHOOK_CTX_N(n, a0, a1, a2, a3, a4, a5)                                       \
    ((struct fohook_ctx){0, FOHOOK_SRC_MACRO, 0, 0, (n), 0,                           \
                         {(fo_u64)(a0), (fo_u64)(a1), (fo_u64)(a2), (fo_u64)(a3),     \
                          (fo_u64)(a4), (fo_u64)(a5)}, 0})
/* A context holding the call's arguments. */
#define FOHOOK_CTX0() FOHOOK_CTX_N(0, 0, 0, 0, 0, 0, 0)
#define FOHOOK_CTX1(a) FOHOOK_CTX_N(1, a, 0, 0, 0, 0, 0)
#define FOHOOK_CTX2(a, b) FOHOOK_CTX_N(2, a, b, 0, 0, 0, 0)
#define FOHOOK_CTX3(a, b, c) FOHOOK_CTX_N(3, a, b, c, 0, 0, 0)
#define FOHOOK_CTX4(a, b, c, d) FOHOOK_CTX_N(4, a, b, c, d, 0, 0)

#ifndef __bpf__ /* ---- the firmware side ------------------------------------------------- */

#include <stddef.h>

#include "fovm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the VM in `arena` (no malloc) and loads + verifies the policy object `elf`.
 * Returns FOVM_OK or a fovm_status with `err` filled; on failure no policy is installed and
 * every hook point continues (fail open). May be called again to replace the policy. */
int fohook_fixed_init(void *arena, size_t arena_len, const void *elf, size_t elf_len,
                      fovm_error *err);

/* The VM holding the policy (to read or fill its maps), or NULL before a successful init. */
fovm_vm *fohook_fixed_vm(void);

/* Runs the policy on `ctx` (hook and source set by the caller); returns its verdict, or
 * FOHOOK_NO_POLICY when there is none, the call is re-entrant, or the program faulted. */
fo_u64 fohook_fixed_run(struct fohook_ctx *ctx);

/* The hook point at a function's entry: evaluates to the policy's verdict. */
#define FO_HOOK_POINT(name, ctx) fohook_point(#name, (ctx))

/* Counters: policy runs, faults (fail-open events), and the verdict of the last run. */
struct fohook_stats {
    fo_u64 runs;
    fo_u64 faults;
    fo_u64 last_verdict;
    int last_error;  /* fovm_status of the last fault, 0 if none */
};
void fohook_fixed_stats(struct fohook_stats *out);
fo_u64 fohook_last_verdict(void);
/* How many functions the name list made hook points, and their names (fohook_list.c, written
 * by hookgen.py with the instrumented sources). */
size_t fohook_instrument_count(void);
extern const char *const fohook_instrument_names[];

static inline __attribute__((always_inline)) fo_u64
fohook_point(const char *name, struct fohook_ctx *ctx)
{
    ctx->hook = fohook_id(name);
    ctx->source = FOHOOK_SRC_MACRO;
    return fohook_fixed_run(ctx);
}

#ifdef __cplusplus
}
#endif

#endif /* !__bpf__ */

#ifdef __cplusplus
static_assert(sizeof(struct fohook_ctx) == 88, "fohook_ctx is 88 bytes");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct fohook_ctx) == 88, "fohook_ctx is 88 bytes");
#else /* C99: hookgen.py includes this header into the firmware's own sources */
typedef char fohook_ctx_is_88_bytes[sizeof(struct fohook_ctx) == 88 ? 1 : -1];
#endif

#endif /* FOHOOK_FIXED_H */
