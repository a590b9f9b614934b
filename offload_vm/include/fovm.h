/*
 * fovm: the freeoffload userspace eBPF VM.
 *
 * One opaque handle (fovm_vm) holds one verified program, its maps and its helpers.
 * Every call that can fail takes a caller-supplied fovm_error (may be NULL) and returns a
 * fovm_status; nothing is printed and nothing needs freeing. Messages are lowercase, name the
 * instruction ("at PC 12") and carry no trailing newline.
 *
 * Threads: after loading, fovm_exec may run on one VM from many threads at once; the host's
 * map calls may run concurrently with programs (readers never see a torn value).
 */
#ifndef FOVM_H
#define FOVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(FOVM_STATIC)
#define FOVM_API __attribute__((visibility("default")))
#else
#define FOVM_API
#endif

/* Bumped whenever a declaration below changes incompatibly; bindings check it at import. */
#define FOVM_ABI_VERSION 1

typedef enum fovm_status {
    FOVM_OK = 0,
    FOVM_E_INVAL = 1,    /* bad argument from the caller */
    FOVM_E_NOMEM = 2,    /* allocation failed or the caller's arena is too small */
    FOVM_E_REJECTED = 3, /* the verifier refused the program (pc names the instruction) */
    FOVM_E_ELF = 4,      /* malformed or unsupported ELF object */
    FOVM_E_NOENT = 5,    /* no such section, map, key or helper */
    FOVM_E_EXIST = 6,    /* the key exists (BPF_NOEXIST) or the id is taken */
    FOVM_E_FULL = 7,     /* the map has no free entry */
    FOVM_E_FAULT = 8,    /* run time: memory access outside every allowed region */
    FOVM_E_BUDGET = 9,   /* run time: the instruction budget ran out */
    FOVM_E_HELPER = 10,  /* run time: a helper failed or was called wrongly */
    FOVM_E_STATE = 11    /* the VM is not in a state for this call (e.g. nothing loaded) */
} fovm_status;

typedef struct fovm_error {
    int code;      /* a fovm_status */
    int pc;        /* instruction index, or -1 when no instruction is concerned */
    char msg[256]; /* lowercase, no trailing newline */
} fovm_error;

typedef struct fovm_vm fovm_vm;
typedef struct fovm_map fovm_map;

/* A helper the host registers: up to five arguments, one result. `user` is the pointer given
 * at registration. Return through *ret; a non-zero status faults the program. */
typedef int (*fovm_helper_fn)(void *user, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                              uint64_t a5, uint64_t *ret);

/* Map types, numbered as in Linux. */
enum { FOVM_MAP_HASH = 1, FOVM_MAP_ARRAY = 2, FOVM_MAP_LRU_HASH = 9 };
/* Update flags, as in Linux. */
enum { FOVM_ANY = 0, FOVM_NOEXIST = 1, FOVM_EXIST = 2 };

typedef struct fovm_map_info {
    char name[64];
    uint32_t type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
} fovm_map_info;

FOVM_API int fovm_abi_version(void);

/* A VM with the built-in helpers (Linux numbering 1,2,3,5,6,7). fovm_create uses malloc;
 * fovm_create_in places everything in the caller's arena (freestanding builds). */
FOVM_API fovm_vm *fovm_create(fovm_error *err);
FOVM_API fovm_vm *fovm_create_in(void *arena, size_t arena_len, fovm_error *err);
FOVM_API void fovm_destroy(fovm_vm *vm);

FOVM_API int fovm_register_helper(fovm_vm *vm, uint32_t id, const char *name, unsigned nargs,
                                  fovm_helper_fn fn, void *user, fovm_error *err);
FOVM_API int fovm_set_budget(fovm_vm *vm, uint64_t max_insns);

/* Load raw instructions (8-byte slots), or a program section of a clang `-target bpf` ELF
 * object (section NULL: the first program section). Either verifies before returning. */
FOVM_API int fovm_load(fovm_vm *vm, const void *insns, size_t len, fovm_error *err);
FOVM_API int fovm_load_elf(fovm_vm *vm, const void *elf, size_t len, const char *section,
                           fovm_error *err);

/* Run the program with r1 = ctx, r2 = ctx_len; the context is readable and writable. */
FOVM_API int fovm_exec(fovm_vm *vm, void *ctx, size_t ctx_len, uint64_t *r0, fovm_error *err);

/* Maps of the loaded program. */
FOVM_API size_t fovm_map_count(const fovm_vm *vm);
FOVM_API fovm_map *fovm_map_at(fovm_vm *vm, size_t index);
FOVM_API fovm_map *fovm_map_find(fovm_vm *vm, const char *name);
FOVM_API void fovm_map_get_info(const fovm_map *map, fovm_map_info *info);
FOVM_API int fovm_map_lookup(fovm_map *map, const void *key, void *value, fovm_error *err);
FOVM_API int fovm_map_update(fovm_map *map, const void *key, const void *value, uint64_t flags,
                             fovm_error *err);
FOVM_API int fovm_map_delete(fovm_map *map, const void *key, fovm_error *err);
FOVM_API int fovm_map_next_key(fovm_map *map, const void *key, void *next_key, fovm_error *err);

/* Shared memory: the bytes a map's storage needs, and placing that storage in caller memory
 * (e.g. an mmap'd file) so that another process can update the map while programs read it.
 * init != 0 formats the memory; init == 0 adopts what is there after checking its header. */
FOVM_API size_t fovm_map_storage_size(const fovm_map_info *info);
FOVM_API int fovm_map_attach_storage(fovm_map *map, void *mem, size_t len, int init,
                                     fovm_error *err);

/* ---- Extensions (vm engineer) ---- */

/* The smallest arena fovm_create_in accepts (the VM itself; programs and maps need more). */
FOVM_API size_t fovm_vm_size(void);

/* Where trace_printk (helper 6) writes: one formatted line per call, no trailing newline.
 * Without a trace function the text is dropped (the helper still returns its length). */
typedef void (*fovm_trace_fn)(void *user, const char *text, size_t len);
FOVM_API void fovm_set_trace(fovm_vm *vm, fovm_trace_fn fn, void *user);

/* A map made by the host for raw programs: index i (in creation order) is what `lddw` with
 * src 1 (map) or 2 (map value) and imm i names. Loading an ELF object replaces every map. */
FOVM_API fovm_map *fovm_map_create(fovm_vm *vm, const fovm_map_info *info, fovm_error *err);

/* fovm_exec that also reports how many instructions ran (may be NULL). */
FOVM_API int fovm_exec_counted(fovm_vm *vm, void *ctx, size_t ctx_len, uint64_t *r0,
                               uint64_t *executed, fovm_error *err);

/* Instruction slots of the loaded program (0 when nothing is loaded). */
FOVM_API size_t fovm_program_len(const fovm_vm *vm);

/* The index-th program section of an ELF object, copied into name (NUL-terminated).
 * FOVM_E_NOENT once index is past the last one. */
FOVM_API int fovm_elf_program_section(const void *elf, size_t len, size_t index, char *name,
                                      size_t name_len, fovm_error *err);

/* Engines. FOVM_ENGINE_AUTO (the default): loading a program also compiles it to native code
 * where the VM can (x86-64 Linux, executable memory allowed), else it is interpreted; the
 * environment variable FOVM_JIT=0 makes AUTO interpret. FOVM_ENGINE_INTERP: always
 * interpret. Both engines behave the same (bounds checks, budget, faults with PC and code).
 * fovm_set_engine applies to the loaded program at once and to later loads; not while runs
 * are in progress; it refuses FOVM_ENGINE_JIT (FOVM_E_INVAL): native code cannot be promised.
 * fovm_engine: FOVM_ENGINE_JIT or FOVM_ENGINE_INTERP for the loaded program, 0 when nothing
 * is loaded. */
enum { FOVM_ENGINE_AUTO = 0, FOVM_ENGINE_INTERP = 1, FOVM_ENGINE_JIT = 2 };
FOVM_API int fovm_set_engine(fovm_vm *vm, int engine);
FOVM_API int fovm_engine(const fovm_vm *vm);

#ifdef __cplusplus
}
#endif
#endif /* FOVM_H */
