/* Internal declarations shared by the VM's source files. Not part of the public API. */
#ifndef FOVM_INT_H
#define FOVM_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpf.h"
#include "fovm.h"

#ifndef FOVM_MAX_CALL_DEPTH
#define FOVM_MAX_CALL_DEPTH 8 /* nested bpf-to-bpf calls below the main program */
#endif
#ifndef FOVM_MAX_INSNS
#define FOVM_MAX_INSNS 65536
#endif
#ifndef FOVM_DEFAULT_BUDGET
#define FOVM_DEFAULT_BUDGET 1000000u
#endif
#ifndef FOVM_SCRATCH_SIZE /* per run: snapshots of shared map values (64 rows of 112 bytes) */
#if __STDC_HOSTED__
#define FOVM_SCRATCH_SIZE 8192
#else
#define FOVM_SCRATCH_SIZE 1024
#endif
#endif
#define FOVM_MAX_HELPERS 40     /* registered helper slots */
#define FOVM_MAX_HELPER_ID 256  /* helper ids are below this */
#define FOVM_MAX_MAPS 64
#define FOVM_MAX_RUN_REGIONS 16 /* hash values lookups returned during one run (ring) */
#define FOVM_MAX_PSEUDO 256     /* lddw map references resolved at load */
#define FOVM_MAX_SEEN 8         /* shared maps one zero-copy run may read in place */
#define FOVM_ZC_CTX_MAX 256     /* contexts up to this size run zero-copy (on a private copy) */
#define FOVM_ZC_TRIES 4         /* zero-copy runs before falling back to snapshot copies */
/* Internal run outcome (never returned to callers): a zero-copy run must start over. */
#define FOVM_RESTART 100

#if defined(__GNUC__) && __STDC_HOSTED__
#define FOVM_ATOMICS 1
#else
#define FOVM_ATOMICS 0 /* freestanding firmware: one core, plain accesses */
#endif

#ifdef __GNUC__
#define FOVM_MEMCPY __builtin_memcpy
#define FOVM_LIKELY(x) __builtin_expect(!!(x), 1)
#define FOVM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define FOVM_INTERNAL __attribute__((visibility("hidden")))
#else
#include <string.h>
#define FOVM_MEMCPY memcpy
#define FOVM_LIKELY(x) (x)
#define FOVM_UNLIKELY(x) (x)
#define FOVM_INTERNAL
#endif

/* Native code: x86-64 Linux hosts (jit.c); everything else interprets. */
#if defined(__x86_64__) && defined(__linux__) && __STDC_HOSTED__ && !defined(FOVM_NO_JIT)
#define FOVM_HAVE_JIT 1
#else
#define FOVM_HAVE_JIT 0
#endif

struct fovm_run;
/* A built-in helper sees the run (to check and register memory). */
typedef int (*fovm_builtin_fn)(struct fovm_run *run, const uint64_t *args, uint64_t *ret);

struct fovm_helper {
    uint32_t id;
    uint8_t nargs;
    uint8_t used;
    fovm_builtin_fn builtin; /* either this... */
    fovm_helper_fn fn;       /* ...or a host function */
    void *user;
    char name[32];
};

struct fovm_region {
    uintptr_t base;
    size_t len;
    int writable;
};

/* Storage header of a map; identical in local and shared memory. All offsets, no pointers. */
struct fovm_map_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t type, key_size, value_size, max_entries;
    uint32_t lock;      /* writers' spinlock */
    uint32_t seq;       /* seqlock: odd while a writer changes the map */
    uint32_t count;     /* hash: entries in use */
    uint32_t free_head; /* hash: first free entry + 1, 0 when none */
    uint32_t nbuckets;  /* hash: power of two */
    uint32_t rows;      /* array: 1 + the highest index written nonzero (later rows are zero) */
    uint64_t clock;     /* LRU: use counter */
    uint64_t total;     /* bytes of the whole storage */
};

struct fovm_map {
    struct fovm_vm *vm;
    fovm_map_info info;
    struct fovm_map_hdr *hdr;
    uint32_t *buckets;
    uint8_t *data;     /* array: values; hash: entries */
    size_t vstride;    /* value bytes rounded up to 8 */
    size_t estride;    /* hash: bytes per entry */
    size_t kstride;
    uint32_t nbuckets; /* hash: power of two, fixed when the map is made */
    int shared;        /* storage is caller memory another process may write */
    int readonly;      /* programs may not write (.rodata) */
};

struct fovm_pseudo {
    uint32_t pc;
    uint32_t map;
    uint32_t kind; /* EBPF_PSEUDO_MAP_FD or EBPF_PSEUDO_MAP_VALUE */
    uint32_t offset;
};

struct fovm_block;

struct fovm_vm {
    /* memory: a caller's arena (bump, reset per load) or malloc'd blocks */
    uint8_t *arena;
    size_t arena_len, arena_used, arena_maps_mark, arena_base_mark;
    struct fovm_block *blocks;
    int heap;

    struct ebpf_insn *insns;
    uint32_t ninsns;
    uint64_t budget;

    struct fovm_helper helpers[FOVM_MAX_HELPERS];
    int8_t helper_slot[FOVM_MAX_HELPER_ID]; /* id -> slot, -1 when none */

    struct fovm_map *maps[FOVM_MAX_MAPS];
    uint32_t nmaps;
    struct fovm_region regions[FOVM_MAX_MAPS]; /* array map values programs may touch */
    uint32_t nregions;
    struct fovm_pseudo pseudo[FOVM_MAX_PSEUDO];
    uint32_t npseudo;

    fovm_trace_fn trace;
    void *trace_user;
    uint64_t prandom;

    uint32_t nshared; /* maps in shared storage: runs read their rows zero-copy */
    int zc_off;       /* the program has side effects: shared rows are copied (sticky) */
    int engine;       /* FOVM_ENGINE_* asked for; see fovm.h */
    void *jit;        /* entry of the program's native code (jit.c), or NULL */
    void *jit_base;   /* its mapping */
    size_t jit_len;
};

struct fovm_frame {
    const struct ebpf_insn *ret;
    uint64_t saved[4]; /* r6-r9 */
};

/* The state of one fovm_exec call; lives on the caller's stack (no allocation). */
struct fovm_run {
    struct fovm_vm *vm;
    fovm_error *err;
    uintptr_t ctx;
    size_t ctx_len;
    uintptr_t stack_top;
    uintptr_t stack_lo; /* lowest address of the current frame */
    int pc;
    int hot_writable;
    uintptr_t hot_base; /* the region the last slow-path check found: tried inline next */
    size_t hot_len;
    uintptr_t hot2_base; /* the one before (policies alternate between two rows) */
    size_t hot2_len;
    int hot2_writable;
    unsigned nret;
    struct fovm_region ret[FOVM_MAX_RUN_REGIONS];
    size_t scratch_used;
    size_t scratch_lazy; /* > scratch_used: the last whole-map copy ends here, the rest zeros
                          * not yet written (mapstore.c) */
    int forgot; /* the scratch was recycled: snapshot pointers may be stale (native code) */
    /* zero-copy reads of shared maps: the run works on a private copy of the context and
     * reads rows in place; each map's sequence is checked again before the result counts */
    int zc;
    int restart;       /* a side effect was attempted in zero-copy mode */
    unsigned nseen;
    struct fovm_seen {
        const struct fovm_map *map;
        uint32_t seq;
    } seen[FOVM_MAX_SEEN];
    /* snapshot runs: shared array maps copied whole into the scratch at their first lookup */
    unsigned nwhole;
    struct fovm_whole {
        const struct fovm_map *map;
        uint8_t *copy;
        size_t filled; /* bytes of the copy written so far (the rest owed: scratch_lazy) */
    } whole[4];
    /* the JIT's view (jit.c): stack length of the current frame, exit state */
    size_t stack_len;
    uintptr_t jit_saved_sp;
    uint64_t jit_rem;   /* budget left (signed) */
    uint64_t jit_depth;
    uint64_t jit_regs[EBPF_NREGS];
    uint64_t scratch[FOVM_SCRATCH_SIZE / 8];
    uint64_t stack[EBPF_STACK_SIZE * (FOVM_MAX_CALL_DEPTH + 1) / 8];
};

/* Makes [base, base + len) the run's hot region; the previous one becomes the second. */
static inline void fovm_set_hot(struct fovm_run *run, uintptr_t base, size_t len, int writable)
{
    if (base != run->hot_base) {
        run->hot2_base = run->hot_base;
        run->hot2_len = run->hot_len;
        run->hot2_writable = run->hot_writable;
    }
    run->hot_base = base;
    run->hot_len = len;
    run->hot_writable = writable;
}

/* Bytes a load or store moves (its size field). */
static inline unsigned fovm_mem_size(uint8_t code)
{
    static const unsigned sizes[4] = {4, 2, 1, 8};
    return sizes[(code & EBPF_SIZE_MASK) >> 3];
}

/* util.c */
FOVM_INTERNAL int fovm_fail(fovm_error *err, int code, int pc, const char *fmt, ...);
FOVM_INTERNAL int fovm_fail_at(fovm_error *err, int code, int pc, const char *fmt, ...);
FOVM_INTERNAL size_t fovm_format(char *out, size_t cap, const char *fmt, ...);
FOVM_INTERNAL size_t fovm_vformat(char *out, size_t cap, const char *fmt, va_list ap);
FOVM_INTERNAL void fovm_copy(void *dst, const void *src, size_t n);
FOVM_INTERNAL void fovm_zero(void *dst, size_t n);
FOVM_INTERNAL int fovm_equal(const void *a, const void *b, size_t n);
FOVM_INTERNAL int fovm_is_zero(const void *p, size_t n);
FOVM_INTERNAL size_t fovm_strlen(const char *s);
FOVM_INTERNAL void fovm_strlcpy(char *dst, const char *src, size_t cap);
FOVM_INTERNAL int fovm_streq(const char *a, const char *b);

/* vm.c */
enum { FOVM_TAG_MAPS = 1, FOVM_TAG_PROG = 2 };
FOVM_INTERNAL void *fovm_alloc(struct fovm_vm *vm, size_t len, int tag);
FOVM_INTERNAL void fovm_release(struct fovm_vm *vm, int tag);
FOVM_INTERNAL void fovm_relink(struct fovm_vm *vm);
FOVM_INTERNAL int fovm_install(struct fovm_vm *vm, const struct ebpf_insn *insns, size_t n,
                               fovm_error *err);

/* verifier.c */
FOVM_INTERNAL int fovm_verify(struct fovm_vm *vm, const struct ebpf_insn *insns, uint32_t n,
                              fovm_error *err);

/* interp.c */
FOVM_INTERNAL int fovm_mem_ok(struct fovm_run *run, uint64_t addr, uint64_t len, int write);
FOVM_INTERNAL int fovm_run_region(struct fovm_run *run, const void *base, size_t len,
                                  int writable);
FOVM_INTERNAL int fovm_interp(struct fovm_run *run, uint64_t *r0, uint64_t *executed);
FOVM_INTERNAL int fovm_call_helper(struct fovm_run *run, const struct fovm_helper *h,
                                   const uint64_t *args, uint64_t *ret, int pc);
FOVM_INTERNAL uint64_t fovm_atomic_rmw(uintptr_t addr, int size8, int op, uint64_t v,
                                       uint64_t *r0);

/* jit.c: native code for the loaded program, where the host allows it */
FOVM_INTERNAL void fovm_jit_compile(struct fovm_vm *vm);
FOVM_INTERNAL void fovm_jit_free(struct fovm_vm *vm);
FOVM_INTERNAL int fovm_jit_run(struct fovm_run *run, uint64_t *r0, uint64_t *executed);

/* helpers.c */
FOVM_INTERNAL void fovm_builtin_helpers(struct fovm_vm *vm);
FOVM_INTERNAL const struct fovm_helper *fovm_helper_get(const struct fovm_vm *vm, uint64_t id);

/* maps.c */
FOVM_INTERNAL struct fovm_map *fovm_map_new(struct fovm_vm *vm, const fovm_map_info *info,
                                            int tag, fovm_error *err);
FOVM_INTERNAL int fovm_map_owned(const struct fovm_vm *vm, uint64_t ptr);
FOVM_INTERNAL void *fovm_map_value_ptr(struct fovm_map *map, uint32_t index);
FOVM_INTERNAL int fovm_map_prog_lookup(struct fovm_run *run, struct fovm_map *map,
                                       const void *key, uint64_t *ret);
FOVM_INTERNAL uint8_t *fovm_whole_copy(struct fovm_run *run, const struct fovm_map *map);
FOVM_INTERNAL uint8_t *fovm_whole_row(struct fovm_run *run, uint8_t *copy, size_t off,
                                      size_t len);
FOVM_INTERNAL int fovm_whole_fill(struct fovm_run *run, uint64_t addr, uint64_t len);

/* lookup.c */
FOVM_INTERNAL int fovm_lookup_any(struct fovm_run *run, uint64_t map, uint64_t key, int pc,
                                  uint64_t *ret);
FOVM_INTERNAL int fovm_lookup_map(struct fovm_run *run, struct fovm_map *map, uint64_t key,
                                  int pc, uint64_t *ret);

/* elf.c, btf.c */
struct fovm_elf;
FOVM_INTERNAL int fovm_btf_map_def(const uint8_t *btf, size_t len, const char *name,
                                   fovm_map_info *info, fovm_error *err);

#endif /* FOVM_INT_H */
