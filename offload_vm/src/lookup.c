/* map_lookup_elem from programs, fast paths for both engines: the interpreter calls
 * fovm_lookup_any for the built-in helper 1, native code fovm_lookup_map where it knows the
 * map (and fovm_lookup_any elsewhere). What they do not handle goes to fovm_map_prog_lookup
 * (mapstore.c). */
#include "maps.h"

/* The general path: the key checked as helpers.c checks it, then mapstore.c. */
static int checked_lookup(struct fovm_run *run, struct fovm_map *m, uint64_t key, int pc,
                          uint64_t *ret)
{
    run->pc = pc;
    *ret = 0;
    if (!(key >= run->stack_lo && key <= run->stack_top - m->info.key_size) &&
        !fovm_mem_ok(run, key, m->info.key_size, 0))
        return fovm_fail_at(run->err, FOVM_E_HELPER, pc,
                            "helper got a bad %s pointer 0x%X (%U bytes)", "key", key,
                            (uint64_t)m->info.key_size);
    return fovm_map_prog_lookup(run, m, (const void *)(uintptr_t)key, ret);
}

/* A zero-copy run's first shared map, noted without the general path's search and waiting:
 * 1 when noted, 0 when the general path must do it. */
static int note_first_map(struct fovm_run *run, const struct fovm_map *m)
{
    uint32_t seq = fovm_read_begin(m);
    if (seq & 1u)
        return 0;
    if (run->nseen == 0) {
        run->seen[0].map = m;
        run->seen[0].seq = seq;
        run->nseen = 1;
        return 1;
    }
    if (run->seen[0].map != m)
        return 0;
    if (run->seen[0].seq != seq)
        run->seen[0].seq = seq ^ 1u; /* changed since the first read: the run will not count */
    return 1;
}

/* map_lookup_elem on a map known to be one of the VM's: array rows directly, everything
 * else through checked_lookup. Array values need no registration: the array's storage is
 * one of the VM's regions (and a snapshot run's whole-map copy is in its scratch). */
int fovm_lookup_map(struct fovm_run *run, struct fovm_map *m, uint64_t key, int pc, uint64_t *ret)
{
    uint32_t idx, i;
    uint8_t *p = m->data;
    int writable = !m->readonly && !m->shared && !run->zc, copy = 0;
    if (m->info.type != FOVM_MAP_ARRAY || !(key >= run->stack_lo && key <= run->stack_top - 4))
        return checked_lookup(run, m, key, pc, ret);
    if (m->shared && !run->zc) { /* a snapshot run: only from the whole-map copy here */
        for (i = 0; i < run->nwhole && run->whole[i].map != m; i++)
            ;
        if (i == run->nwhole)
            return checked_lookup(run, m, key, pc, ret);
        p = run->whole[i].copy;
        writable = copy = 1;
    }
    FOVM_MEMCPY(&idx, (const void *)(uintptr_t)key, 4);
    *ret = 0;
    if (idx >= m->info.max_entries)
        return 0;
    if (m->shared && run->zc && !note_first_map(run, m))
        return checked_lookup(run, m, key, pc, ret);
    p = copy ? fovm_whole_row(run, p, (size_t)idx * m->vstride, m->vstride)
             : p + (size_t)idx * m->vstride;
    fovm_set_hot(run, (uintptr_t)p, m->info.value_size, writable);
    *ret = (uint64_t)(uintptr_t)p;
    return 0;
}


/* The built-in map_lookup_elem(r1 map, r2 key) without the helper dispatch. */
int fovm_lookup_any(struct fovm_run *run, uint64_t mp, uint64_t key, int pc, uint64_t *ret)
{
    const struct fovm_vm *vm = run->vm;
    uint32_t i;
    for (i = 0; i < vm->nmaps; i++)
        if ((uint64_t)(uintptr_t)vm->maps[i] == mp)
            return fovm_lookup_map(run, vm->maps[i], key, pc, ret);
    *ret = 0;
    return fovm_fail_at(run->err, FOVM_E_HELPER, pc, "helper got 0x%X, which is not a map", mp);
}
