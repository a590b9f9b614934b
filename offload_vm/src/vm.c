/* The VM handle: memory (heap or caller arena), helpers, loading raw programs. */
#include "fovm_int.h"

#if __STDC_HOSTED__ && !defined(FOVM_NO_MALLOC)
#include <stdlib.h>
#define FOVM_HAVE_MALLOC 1
#else
#define FOVM_HAVE_MALLOC 0
#endif

struct fovm_block {
    struct fovm_block *next;
    int tag;
    uint64_t align_[1];
};

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

int fovm_abi_version(void) { return FOVM_ABI_VERSION; }

size_t fovm_vm_size(void) { return ALIGN8(sizeof(struct fovm_vm)) + 8; }

static void vm_init(struct fovm_vm *vm)
{
    int i;
    fovm_zero(vm, sizeof *vm);
    for (i = 0; i < FOVM_MAX_HELPER_ID; i++)
        vm->helper_slot[i] = -1;
    vm->budget = FOVM_DEFAULT_BUDGET;
    vm->prandom = 0x9e3779b97f4a7c15ull;
    fovm_builtin_helpers(vm);
}

fovm_vm *fovm_create(fovm_error *err)
{
#if FOVM_HAVE_MALLOC
    struct fovm_vm *vm = (struct fovm_vm *)malloc(sizeof *vm);
    if (!vm) {
        fovm_fail(err, FOVM_E_NOMEM, -1, "out of memory for the vm");
        return NULL;
    }
    vm_init(vm);
    vm->heap = 1;
    return vm;
#else
    fovm_fail(err, FOVM_E_NOMEM, -1, "built without malloc: use fovm_create_in");
    return NULL;
#endif
}

fovm_vm *fovm_create_in(void *arena, size_t arena_len, fovm_error *err)
{
    uintptr_t p = (uintptr_t)arena, start = (p + 7u) & ~(uintptr_t)7u;
    size_t skip = (size_t)(start - p), need = ALIGN8(sizeof(struct fovm_vm));
    struct fovm_vm *vm;
    if (!arena || arena_len < skip + need) {
        fovm_fail(err, FOVM_E_NOMEM, -1, "arena of %u bytes is smaller than the vm (%u bytes)",
                  (unsigned)arena_len, (unsigned)(skip + need));
        return NULL;
    }
    vm = (struct fovm_vm *)start;
    vm_init(vm);
    vm->arena = (uint8_t *)start;
    vm->arena_len = arena_len - skip;
    vm->arena_used = vm->arena_base_mark = vm->arena_maps_mark = need;
    return vm;
}

void fovm_destroy(fovm_vm *vm)
{
    if (!vm)
        return;
    fovm_release(vm, FOVM_TAG_MAPS);
#if FOVM_HAVE_MALLOC
    if (vm->heap)
        free(vm);
#endif
}

void *fovm_alloc(struct fovm_vm *vm, size_t len, int tag)
{
    void *p;
    if (!vm->heap) {
        size_t n = ALIGN8(len);
        if (n < len || vm->arena_len - vm->arena_used < n)
            return NULL;
        p = vm->arena + vm->arena_used;
        vm->arena_used += n;
        if (tag == FOVM_TAG_MAPS)
            vm->arena_maps_mark = vm->arena_used;
        fovm_zero(p, n);
        return p;
    }
#if FOVM_HAVE_MALLOC
    {
        struct fovm_block *b;
        if (len > (size_t)-1 - sizeof *b)
            return NULL;
        b = (struct fovm_block *)calloc(1, sizeof *b + len);
        if (!b)
            return NULL;
        b->tag = tag;
        b->next = vm->blocks;
        vm->blocks = b;
        return b + 1;
    }
#else
    return NULL;
#endif
}

/* Frees the program (FOVM_TAG_PROG) or everything (FOVM_TAG_MAPS). */
void fovm_release(struct fovm_vm *vm, int tag)
{
#if FOVM_HAVE_JIT
    fovm_jit_free(vm);
#endif
    vm->insns = NULL;
    vm->ninsns = 0;
    vm->npseudo = 0;
    if (tag == FOVM_TAG_MAPS) {
        vm->nmaps = 0;
        vm->nshared = 0;
        vm->nregions = 0;
    }
    if (!vm->heap) {
        if (tag == FOVM_TAG_MAPS)
            vm->arena_maps_mark = vm->arena_base_mark;
        vm->arena_used = vm->arena_maps_mark;
        return;
    }
#if FOVM_HAVE_MALLOC
    {
        struct fovm_block **pp = &vm->blocks;
        while (*pp) {
            struct fovm_block *b = *pp;
            if (tag == FOVM_TAG_MAPS || b->tag == tag) {
                *pp = b->next;
                free(b);
            } else {
                pp = &b->next;
            }
        }
    }
#endif
}

int fovm_set_budget(fovm_vm *vm, uint64_t max_insns)
{
    if (!vm || max_insns == 0)
        return FOVM_E_INVAL;
    vm->budget = max_insns;
    return FOVM_OK;
}

void fovm_set_trace(fovm_vm *vm, fovm_trace_fn fn, void *user)
{
    vm->trace = fn;
    vm->trace_user = user;
}

size_t fovm_program_len(const fovm_vm *vm) { return vm ? vm->ninsns : 0; }

int fovm_register_helper(fovm_vm *vm, uint32_t id, const char *name, unsigned nargs,
                         fovm_helper_fn fn, void *user, fovm_error *err)
{
    int slot, i;
    struct fovm_helper *h;
    if (!vm || !fn || id >= FOVM_MAX_HELPER_ID || nargs > 5)
        return fovm_fail(err, FOVM_E_INVAL, -1,
                         "helper %u: id must be below %u, nargs at most 5, fn set", id,
                         FOVM_MAX_HELPER_ID);
    slot = vm->helper_slot[id];
    if (slot >= 0 && !vm->helpers[slot].builtin)
        return fovm_fail(err, FOVM_E_EXIST, -1, "helper %u is already registered", id);
    if (slot < 0) {
        for (i = 0; i < FOVM_MAX_HELPERS && vm->helpers[i].used; i++)
            ;
        if (i == FOVM_MAX_HELPERS)
            return fovm_fail(err, FOVM_E_FULL, -1, "no room for helper %u", id);
        slot = i;
    }
    h = &vm->helpers[slot];
    fovm_zero(h, sizeof *h);
    h->id = id;
    h->used = 1;
    h->nargs = (uint8_t)nargs;
    h->fn = fn;
    h->user = user;
    fovm_strlcpy(h->name, name ? name : "host", sizeof h->name);
    vm->helper_slot[id] = (int8_t)slot;
#if FOVM_HAVE_JIT
    if (vm->jit) { /* native code may call the built-in it replaced directly */
        fovm_jit_free(vm);
        fovm_jit_compile(vm);
    }
#endif
    return FOVM_OK;
}

const struct fovm_helper *fovm_helper_get(const struct fovm_vm *vm, uint64_t id)
{
    if (id >= FOVM_MAX_HELPER_ID || vm->helper_slot[id] < 0)
        return NULL;
    return &vm->helpers[(int)vm->helper_slot[id]];
}

/* Writes resolved addresses into the lddw instructions that name maps, and the array map
 * value ranges programs may touch. Again after a map's storage moves. */
void fovm_relink(struct fovm_vm *vm)
{
    uint32_t i;
    vm->nregions = 0;
    for (i = 0; i < vm->nmaps; i++) {
        struct fovm_map *m = vm->maps[i];
        if (m->info.type != FOVM_MAP_ARRAY)
            continue;
        vm->regions[vm->nregions].base = (uintptr_t)m->data;
        vm->regions[vm->nregions].len = m->vstride * m->info.max_entries;
        /* shared storage may be mapped read-only; programs change it through helpers */
        vm->regions[vm->nregions].writable = !m->readonly && !m->shared;
        vm->nregions++;
    }
    for (i = 0; vm->insns && i < vm->npseudo; i++) {
        const struct fovm_pseudo *p = &vm->pseudo[i];
        struct fovm_map *m = vm->maps[p->map];
        uint64_t v = p->kind == EBPF_PSEUDO_MAP_FD
                         ? (uint64_t)(uintptr_t)m
                         : (uint64_t)(uintptr_t)fovm_map_value_ptr(m, 0) + p->offset;
        vm->insns[p->pc].regs &= 0x0f;
        vm->insns[p->pc].imm = (int32_t)(uint32_t)v;
        vm->insns[p->pc + 1].imm = (int32_t)(uint32_t)(v >> 32);
    }
}

/* Verifies instructions already copied into the VM's memory and makes them the program. */
int fovm_install(struct fovm_vm *vm, const struct ebpf_insn *insns, size_t n, fovm_error *err)
{
    uint32_t pc;
    int rc = fovm_verify(vm, insns, (uint32_t)n, err);
    if (rc)
        return rc;
    vm->npseudo = 0;
    for (pc = 0; pc < n; pc++) {
        const struct ebpf_insn *in = &insns[pc];
        unsigned src = EBPF_SRC(in);
        if (in->code != EBPF_OP_LDDW)
            continue;
        if (src != EBPF_PSEUDO_IMM64) {
            struct fovm_pseudo *p;
            if (vm->npseudo == FOVM_MAX_PSEUDO)
                return fovm_fail(err, FOVM_E_REJECTED, (int)pc,
                                 "more than %u map references at PC %u", FOVM_MAX_PSEUDO, pc);
            p = &vm->pseudo[vm->npseudo++];
            p->pc = pc;
            p->map = (uint32_t)in->imm;
            p->kind = (src == EBPF_PSEUDO_MAP_FD || src == EBPF_PSEUDO_MAP_IDX)
                          ? EBPF_PSEUDO_MAP_FD
                          : EBPF_PSEUDO_MAP_VALUE;
            p->offset = (uint32_t)in[1].imm;
        }
        pc++;
    }
    vm->insns = (struct ebpf_insn *)insns;
    vm->ninsns = (uint32_t)n;
    vm->zc_off = 0;
    fovm_relink(vm);
#if FOVM_HAVE_JIT
    fovm_jit_compile(vm); /* leaves vm->jit NULL where native code is not possible */
#endif
    return FOVM_OK;
}

int fovm_load(fovm_vm *vm, const void *insns, size_t len, fovm_error *err)
{
    struct ebpf_insn *copy;
    int rc;
    if (!vm || (!insns && len))
        return fovm_fail(err, FOVM_E_INVAL, -1, "no vm or no instructions");
    fovm_release(vm, FOVM_TAG_PROG);
    if (len == 0 || len % 8)
        return fovm_fail(err, FOVM_E_REJECTED, -1,
                         "program of %u bytes is not a whole number of 8-byte instructions",
                         (unsigned)len);
    if (len / 8 > FOVM_MAX_INSNS)
        return fovm_fail(err, FOVM_E_REJECTED, -1, "program of %u instructions exceeds %u",
                         (unsigned)(len / 8), FOVM_MAX_INSNS);
    copy = (struct ebpf_insn *)fovm_alloc(vm, len, FOVM_TAG_PROG);
    if (!copy)
        return fovm_fail(err, FOVM_E_NOMEM, -1, "no memory for %u instructions",
                         (unsigned)(len / 8));
    fovm_copy(copy, insns, len);
    rc = fovm_install(vm, copy, len / 8, err);
    if (rc)
        fovm_release(vm, FOVM_TAG_PROG);
    return rc;
}
