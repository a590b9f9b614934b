/* Map storage in caller memory (shared with other processes) and lookups from programs. */
#include "maps.h"

size_t fovm_map_storage_size(const fovm_map_info *info)
{
    struct fovm_map tmp;
    uint64_t total;
    if (!info || fovm_map_check_info(info, NULL))
        return 0;
    total = fovm_map_layout(info, &tmp);
    return total < (size_t)-1 ? (size_t)total : 0;
}

static int adopt_ok(const struct fovm_map *m, const struct fovm_map_hdr *h, uint64_t total,
                    size_t len, fovm_error *err)
{
    if (h->magic != FOVM_MAP_MAGIC)
        return fovm_fail(err, FOVM_E_INVAL, -1, "map %s: memory holds no fovm map",
                         m->info.name);
    if (h->version != FOVM_MAP_VERSION)
        return fovm_fail(err, FOVM_E_INVAL, -1,
                         "map %s: storage format version %u (another build wrote it), this "
                         "build reads version %u: attach it again with init",
                         m->info.name, h->version, FOVM_MAP_VERSION);
    if (h->type != m->info.type || h->key_size != m->info.key_size ||
        h->value_size != m->info.value_size || h->max_entries != m->info.max_entries ||
        h->total != total || (m->info.type != FOVM_MAP_ARRAY && h->nbuckets != m->nbuckets) ||
        total > len)
        return fovm_fail(err, FOVM_E_INVAL, -1,
                         "map %s: shared memory holds type %u key %u value %u entries %u, "
                         "the program wants %u %u %u %u",
                         m->info.name, h->type, h->key_size, h->value_size, h->max_entries,
                         m->info.type, m->info.key_size, m->info.value_size,
                         m->info.max_entries);
    return 0;
}

/* Copies every entry of `from` into the freshly formatted `to`. */
static int copy_entries(struct fovm_map *from, struct fovm_map *to, fovm_error *err)
{
    uint8_t key[512], value[1024];
    int rc, have;
    if (from->info.type == FOVM_MAP_ARRAY) {
        uint32_t rows = from->info.max_entries;
        fovm_copy(to->data, from->data, from->vstride * rows);
        while (rows && fovm_is_zero(from->data + (size_t)(rows - 1) * from->vstride,
                                    from->vstride))
            rows--;
        to->hdr->rows = rows;
        return 0;
    }
    if (from->info.value_size > sizeof value)
        return fovm_fail(err, FOVM_E_INVAL, -1, "map %s: values over 1024 bytes cannot be copied",
                         from->info.name);
    have = fovm_map_next_key(from, NULL, key, NULL) == FOVM_OK;
    while (have) {
        if (fovm_map_read(from, key, value, FOVM_HOST_TRIES) == FOVM_OK &&
            (rc = fovm_map_update(to, key, value, FOVM_ANY, err)) != 0)
            return rc;
        have = fovm_map_next_key(from, key, key, NULL) == FOVM_OK;
    }
    return 0;
}

int fovm_map_attach_storage(fovm_map *map, void *mem, size_t len, int init, fovm_error *err)
{
    struct fovm_map moved;
    uint64_t total;
    int rc;
    if (!map || !mem || ((uintptr_t)mem & 7u))
        return fovm_fail(err, FOVM_E_INVAL, -1, "shared storage must be 8-byte aligned memory");
    fovm_copy(&moved, map, sizeof moved);
    total = fovm_map_layout(&map->info, &moved);
    if (total > len)
        return fovm_fail(err, FOVM_E_NOMEM, -1, "map %s needs %U bytes of storage, got %U",
                         map->info.name, total, (uint64_t)len);
    if (init) {
        fovm_map_format(&moved, mem, total);
        if ((rc = copy_entries(map, &moved, err)) != 0)
            return rc;
    } else {
        if ((rc = adopt_ok(map, (const struct fovm_map_hdr *)mem, total, len, err)) != 0)
            return rc;
        fovm_map_bind(&moved, mem);
    }
    if (!map->shared)
        map->vm->nshared++;
    moved.shared = 1;
    fovm_copy(map, &moved, sizeof moved);
    fovm_relink(map->vm);
    return FOVM_OK;
}

/* The scratch is full: start it over (a program holding a pointer from 8 KiB of snapshots
 * ago now reads a later snapshot: still its own memory, never another process's). */
static void forget_snapshots(struct fovm_run *run)
{
    uintptr_t lo = (uintptr_t)run->scratch;
    if (run->hot_base >= lo && run->hot_base < lo + FOVM_SCRATCH_SIZE)
        run->hot_len = 0;
    if (run->hot2_base >= lo && run->hot2_base < lo + FOVM_SCRATCH_SIZE)
        run->hot2_len = 0;
    run->scratch_used = 0;
    run->scratch_lazy = 0;
    run->nwhole = 0;
    run->whole[0].map = NULL;
    run->forgot = 1;
}

/* Writes the zeros the last whole-map copy still owes, up to scratch offset `end`. */
static void fill_to(struct fovm_run *run, size_t end)
{
    if (end > run->scratch_lazy)
        end = run->scratch_lazy;
    if (end > run->scratch_used) {
        struct fovm_whole *w = &run->whole[run->nwhole - 1]; /* the copy that owes them */
        fovm_zero((uint8_t *)run->scratch + run->scratch_used, end - run->scratch_used);
        run->scratch_used = end;
        w->filled = end - (size_t)(w->copy - (uint8_t *)run->scratch);
    }
}

/* Scratch memory [addr, addr + len) among a whole-map copy's rows not yet written: zeros
 * now (1), or 0 when the range is not that. */
int fovm_whole_fill(struct fovm_run *run, uint64_t addr, uint64_t len)
{
    uint64_t lo = (uintptr_t)run->scratch;
    if (addr < lo || len > run->scratch_lazy || addr - lo > run->scratch_lazy - len)
        return 0;
    fill_to(run, (size_t)(addr - lo + len));
    return 1;
}

/* The row at `off` bytes into a whole-map copy, `len` bytes, written out if it was owed. */
uint8_t *fovm_whole_row(struct fovm_run *run, uint8_t *copy, size_t off, size_t len)
{
    fill_to(run, (size_t)(copy - (uint8_t *)run->scratch) + off + len);
    return copy + off;
}

/* A snapshot run's copy of a whole shared array map, made at its first lookup when it fits
 * in the free scratch (one seqlock-consistent copy instead of one per lookup: policies scan
 * their candidates several times per run). NULL when it does not fit or the map kept
 * changing (the per-row path decides then). */
uint8_t *fovm_whole_copy(struct fovm_run *run, const struct fovm_map *m)
{
    size_t size = m->vstride * m->info.max_entries;
    uint32_t tries, seq, i;
    uint8_t *p;
    for (i = 0; i < run->nwhole; i++)
        if (run->whole[i].map == m)
            return run->whole[i].copy;
    fill_to(run, run->scratch_lazy); /* this copy must follow the last one, whole */
    p = (uint8_t *)run->scratch + run->scratch_used;
    if (m->info.type != FOVM_MAP_ARRAY || run->nwhole == 4 ||
        size > FOVM_SCRATCH_SIZE - run->scratch_used)
        return NULL;
    for (tries = 0; tries < FOVM_PROG_TRIES; fovm_relax(++tries)) {
        size_t used;
        uint32_t rows;
        seq = fovm_read_begin(m);
        if (seq & 1u)
            continue;
        /* rows past the header's count are zeros (writers count every row they make
         * nonzero): not read, but written when a lookup or an access reaches them; the
         * first of them is copied now (scans stop at the first empty row). The count is
         * read once: a writer may raise it meanwhile, and the copy must stay within size. */
        rows = *(volatile const uint32_t *)&m->hdr->rows;
        used = rows < m->info.max_entries ? ((size_t)rows + 1) * m->vstride : size;
        fovm_copy(p, m->data, used);
        if (!fovm_read_retry(m, seq)) {
            run->scratch_lazy = run->scratch_used + size;
            run->scratch_used += used;
            run->whole[run->nwhole].map = m;
            run->whole[run->nwhole].copy = p;
            run->whole[run->nwhole].filled = used;
            run->nwhole++;
            return p;
        }
    }
    return NULL;
}

/* A zero-copy lookup in a shared map (see exec.c): the row in place, read-only, and the map's
 * sequence recorded for the check at the end of the run. 0 when a writer holds the map for
 * too long (the program sees no entry, as with a snapshot copy). */
static uint8_t *lookup_in_place(struct fovm_run *run, struct fovm_map *m, const void *key)
{
    uint32_t seq = fovm_read_begin(m), tries = 0, i, idx;
    struct fovm_hentry *e;
    while (seq & 1u) {
        if (++tries >= FOVM_PROG_TRIES)
            return NULL;
        fovm_relax(tries);
        seq = fovm_read_begin(m);
    }
    for (i = 0; i < run->nseen && run->seen[i].map != m; i++)
        ;
    if (i == run->nseen) {
        if (i == FOVM_MAX_SEEN) { /* too many maps to track: redo the run with copies */
            run->restart = 1;
            return NULL;
        }
        run->seen[i].map = m;
        run->seen[i].seq = seq;
        run->nseen++;
    } else if (run->seen[i].seq != seq) {
        run->seen[i].seq = seq ^ 1u; /* changed since the first read: the run will not count */
    }
    if (m->info.type == FOVM_MAP_ARRAY) {
        FOVM_MEMCPY(&idx, key, 4);
        return idx < m->info.max_entries ? m->data + (size_t)idx * m->vstride : NULL;
    }
    e = fovm_hash_find(m, key);
    return e ? fovm_hval(m, e) : NULL;
}

/* map_lookup_elem from a program: a pointer to the value, or 0. In a zero-copy run, rows of
 * shared maps are read in place (lookup_in_place); otherwise values of shared maps are
 * copied under the seqlock into the run's scratch so the program never sees a torn value
 * (writes through that pointer stay private: use map_update_elem to change a shared map);
 * other values are returned in place and registered for the rest of the run. */
int fovm_map_prog_lookup(struct fovm_run *run, struct fovm_map *m, const void *key,
                         uint64_t *ret)
{
    uint8_t *p;
    *ret = 0;
    if (m->shared && run->zc) {
        p = lookup_in_place(run, m, key);
        if (run->restart)
            return FOVM_RESTART;
        if (!p)
            return 0;
        fovm_run_region(run, p, m->info.value_size, 0);
        *ret = (uint64_t)(uintptr_t)p;
        return 0;
    }
    if (m->shared && (p = fovm_whole_copy(run, m)) != NULL) {
        uint32_t idx;
        FOVM_MEMCPY(&idx, key, 4);
        if (idx >= m->info.max_entries)
            return 0;
        p = fovm_whole_row(run, p, (size_t)idx * m->vstride, m->vstride);
        fovm_set_hot(run, (uintptr_t)p, m->info.value_size, 1);
        *ret = (uint64_t)(uintptr_t)p;
        return 0;
    }
    if (m->shared) {
        size_t need = m->vstride;
        if (need > FOVM_SCRATCH_SIZE)
            return fovm_fail_at(run->err, FOVM_E_HELPER, run->pc,
                                "values of map %s exceed the %u-byte snapshot scratch",
                                m->info.name, (unsigned)FOVM_SCRATCH_SIZE);
        fill_to(run, run->scratch_lazy);
        if (FOVM_SCRATCH_SIZE - run->scratch_used < need)
            forget_snapshots(run);
        p = (uint8_t *)run->scratch + run->scratch_used;
        if (fovm_map_read(m, key, p, FOVM_PROG_TRIES) != FOVM_OK)
            return 0;
        run->scratch_used += need; /* [scratch, scratch + used) is the program's memory */
        fovm_set_hot(run, (uintptr_t)p, m->info.value_size, 1);
        *ret = (uint64_t)(uintptr_t)p;
        return 0;
    } else if (m->info.type == FOVM_MAP_ARRAY) {
        uint32_t idx;
        FOVM_MEMCPY(&idx, key, 4);
        if (idx >= m->info.max_entries)
            return 0;
        p = m->data + (size_t)idx * m->vstride;
    } else {
        struct fovm_hentry *e = fovm_hash_find(m, key);
        if (!e)
            return 0;
        if (m->info.type == FOVM_MAP_LRU_HASH)
            e->stamp = fovm_tick(m->hdr); /* a racing stamp only skews the LRU choice */
        p = fovm_hval(m, e);
    }
    fovm_run_region(run, p, m->info.value_size, !m->readonly);
    *ret = (uint64_t)(uintptr_t)p;
    return 0;
}
