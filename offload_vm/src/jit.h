/* Internal interface between jit.c (memory, runs, the C side of native code) and the code
 * generators (jit_x86.c). Not part of the public API. */
#ifndef FOVM_JIT_H
#define FOVM_JIT_H

#include "fovm_int.h"

/* Outcomes native code reports itself (the C side reports the rest with a message). */
#define FOVM_JIT_BUDGET (-1)
#define FOVM_JIT_DEPTH (-2)
/* Budgets above this are treated as this much (the count left is a signed 64-bit value). */
#define FOVM_JIT_MAX_BUDGET (1ull << 62)

/* What is known about the base register of a load or store (jit_facts.c). */
enum {
    FOVM_FACT_NONE = 0,      /* the instruction is never reached */
    FOVM_FACT_ANY,           /* nothing */
    FOVM_FACT_CTX,           /* the context pointer + off */
    FOVM_FACT_MAP,           /* maps[map] (an lddw) */
    FOVM_FACT_VALUE_OR_NULL, /* what map_lookup_elem on the array maps[map] returned, + off */
    FOVM_FACT_VALUE          /* the same, known not NULL */
};
struct fovm_fact {
    uint8_t kind;
    uint8_t map;
    int32_t off;
};

struct fovm_jit_fix {
    uint32_t at; /* offset of a rel32 field */
    uint32_t pc; /* the instruction it jumps to */
};

struct fovm_jit {
    const struct fovm_vm *vm;
    uint8_t *buf;
    size_t len, cap;
    uint32_t *off;   /* code offset of each instruction */
    uint32_t *pre;   /* instructions before each slot (a lddw counts once) */
    uint8_t *label;  /* the slot is a jump or call target */
    struct fovm_jit_fix *fix;
    size_t nfix, capfix;
    size_t entry;    /* offset of the entry point */
    struct fovm_fact *facts; /* per instruction, or NULL: nothing known */
    int r1_map;      /* while emitting: the map r1 holds (an lddw in this straight run), or -1 */
    int failed;
};

/* The fact for each load and store of the loaded program (label: jump and call targets);
 * NULL when memory is short. */
FOVM_INTERNAL struct fovm_fact *fovm_jit_facts(const struct fovm_vm *vm, const uint8_t *label);
/* The map the lddw at pc loads (its index in vm->maps), or -1 when it loads no map. */
FOVM_INTERNAL int fovm_jit_lddw_map(const struct fovm_vm *vm, uint32_t pc);
/* Emits the program (arch-specific); sets j->failed on any problem. */
FOVM_INTERNAL void fovm_jit_emit(struct fovm_jit *j);
FOVM_INTERNAL int fovm_jit_reserve(struct fovm_jit *j, size_t n);
FOVM_INTERNAL void fovm_jit_add_fix(struct fovm_jit *j, uint32_t at, uint32_t pc);

/* Called from native code. packed = pc << 8 | write << 4 | size. */
FOVM_INTERNAL int fovm_jit_mem(struct fovm_run *run, uint64_t addr, uint32_t packed);
FOVM_INTERNAL int fovm_jit_call(struct fovm_run *run, uint64_t id, uint32_t pc);
FOVM_INTERNAL int fovm_jit_lookup(struct fovm_run *run, uint64_t map, uint64_t key, uint32_t pc);
FOVM_INTERNAL int fovm_jit_lookup_map(struct fovm_run *run, struct fovm_map *m, uint64_t key,
                                      uint32_t pc);
FOVM_INTERNAL int fovm_jit_atomic(struct fovm_run *run, uint64_t addr, uint32_t pc);

#endif /* FOVM_JIT_H */
