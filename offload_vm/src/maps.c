/* Maps: layout, the seqlock, array maps and the public map API. */
#if __STDC_HOSTED__ && !defined(FOVM_NO_YIELD) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L /* sched_yield */
#endif
#include "maps.h"

#if __STDC_HOSTED__ && !defined(FOVM_NO_YIELD)
#include <sched.h>
#define FOVM_YIELD() sched_yield()
#else
#define FOVM_YIELD() ((void)0) /* firmware: one core, the writer is not running meanwhile */
#endif

void fovm_relax(uint32_t attempt)
{
    if (attempt >= FOVM_SPINS_BEFORE_YIELD)
        FOVM_YIELD();
}

#define ALIGN8(n) (((n) + 7u) & ~(uint64_t)7u)

#if FOVM_ATOMICS
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FENCE_ACQ() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define FENCE_REL() __atomic_thread_fence(__ATOMIC_RELEASE)
#define TRY_LOCK(p) __atomic_exchange_n((p), 1u, __ATOMIC_ACQUIRE) == 0
#else
#define LOAD_ACQ(p) (*(volatile const uint32_t *)(p))
#define STORE_REL(p, v) (*(volatile uint32_t *)(p) = (v))
#define FENCE_ACQ() ((void)0)
#define FENCE_REL() ((void)0)
#define TRY_LOCK(p) ((*(p) == 0) ? (*(p) = 1, 1) : 0)
#endif

int fovm_write_begin(struct fovm_map *m, fovm_error *err)
{
    uint32_t spins = 0;
    while (!(TRY_LOCK(&m->hdr->lock))) {
        if (++spins > FOVM_HOST_TRIES)
            return fovm_fail(err, FOVM_E_STATE, -1, "map %s is locked by another writer",
                             m->info.name);
        fovm_relax(spins);
    }
    STORE_REL(&m->hdr->seq, m->hdr->seq + 1);
    FENCE_REL();
    return 0;
}

void fovm_write_end(struct fovm_map *m)
{
    FENCE_REL();
    STORE_REL(&m->hdr->seq, m->hdr->seq + 1);
    STORE_REL(&m->hdr->lock, 0u);
}

uint32_t fovm_read_begin(const struct fovm_map *m) { return LOAD_ACQ(&m->hdr->seq); }

/* Nonzero when the read that began at `seq` overlapped a write and must be repeated. */
int fovm_read_retry(const struct fovm_map *m, uint32_t seq)
{
    FENCE_ACQ();
    return (seq & 1u) || LOAD_ACQ(&m->hdr->seq) != seq;
}

int fovm_map_check_info(const fovm_map_info *info, fovm_error *err)
{
    if (info->type != FOVM_MAP_ARRAY && info->type != FOVM_MAP_HASH &&
        info->type != FOVM_MAP_LRU_HASH)
        return fovm_fail(err, FOVM_E_INVAL, -1,
                         "map %s: type %u is not array (2), hash (1) or lru_hash (9)", info->name,
                         info->type);
    if (info->key_size == 0 || info->key_size > 512 || info->value_size == 0 ||
        info->value_size > (1u << 20) || info->max_entries == 0 ||
        info->max_entries > (1u << 24))
        return fovm_fail(err, FOVM_E_INVAL, -1,
                         "map %s: key_size 1..512, value_size 1..1048576 and max_entries "
                         "1..16777216 are allowed (got %u, %u, %u)",
                         info->name, info->key_size, info->value_size, info->max_entries);
    if (info->type == FOVM_MAP_ARRAY && info->key_size != 4)
        return fovm_fail(err, FOVM_E_INVAL, -1, "array map %s: key_size must be 4, not %u",
                         info->name, info->key_size);
    return 0;
}

/* Fills the strides of m and returns the bytes the storage needs. */
uint64_t fovm_map_layout(const fovm_map_info *info, struct fovm_map *m)
{
    uint64_t buckets = 1, total;
    m->vstride = (size_t)ALIGN8(info->value_size);
    m->kstride = (size_t)ALIGN8(info->key_size);
    if (info->type == FOVM_MAP_ARRAY) {
        m->estride = m->vstride;
        return FOVM_MAP_HDR + (uint64_t)m->vstride * info->max_entries;
    }
    while (buckets < info->max_entries)
        buckets <<= 1;
    m->nbuckets = (uint32_t)buckets;
    m->estride = sizeof(struct fovm_hentry) + m->kstride + m->vstride;
    total = FOVM_MAP_HDR + ALIGN8(buckets * 4) + (uint64_t)m->estride * info->max_entries;
    return total;
}

void fovm_map_bind(struct fovm_map *m, void *mem)
{
    m->hdr = (struct fovm_map_hdr *)mem;
    m->buckets = (uint32_t *)((uint8_t *)mem + FOVM_MAP_HDR);
    m->data = (uint8_t *)mem + FOVM_MAP_HDR;
    if (m->info.type != FOVM_MAP_ARRAY)
        m->data += ALIGN8((uint64_t)m->nbuckets * 4);
}

void fovm_map_format(struct fovm_map *m, void *mem, uint64_t total)
{
    struct fovm_map_hdr *h = (struct fovm_map_hdr *)mem;
    uint32_t i, buckets = 1;
    fovm_zero(mem, (size_t)total);
    h->magic = FOVM_MAP_MAGIC;
    h->version = FOVM_MAP_VERSION;
    h->type = m->info.type;
    h->key_size = m->info.key_size;
    h->value_size = m->info.value_size;
    h->max_entries = m->info.max_entries;
    h->total = total;
    if (m->info.type != FOVM_MAP_ARRAY) {
        while (buckets < m->info.max_entries)
            buckets <<= 1;
        h->nbuckets = buckets;
    }
    fovm_map_bind(m, mem);
    if (m->info.type == FOVM_MAP_ARRAY)
        return;
    for (i = 0; i < m->info.max_entries; i++) {
        struct fovm_hentry *e = (struct fovm_hentry *)(m->data + (size_t)i * m->estride);
        e->next = i + 1 < m->info.max_entries ? i + 2 : 0;
    }
    h->free_head = 1;
}

struct fovm_map *fovm_map_new(struct fovm_vm *vm, const fovm_map_info *info, int tag,
                              fovm_error *err)
{
    struct fovm_map *m;
    uint64_t total;
    void *mem;
    if (fovm_map_check_info(info, err))
        return NULL;
    if (vm->nmaps == FOVM_MAX_MAPS) {
        fovm_fail(err, FOVM_E_FULL, -1, "more than %u maps", FOVM_MAX_MAPS);
        return NULL;
    }
    m = (struct fovm_map *)fovm_alloc(vm, sizeof *m, tag);
    if (!m) {
        fovm_fail(err, FOVM_E_NOMEM, -1, "no memory for map %s", info->name);
        return NULL;
    }
    m->vm = vm;
    fovm_copy(&m->info, info, sizeof m->info);
    m->info.name[sizeof m->info.name - 1] = 0;
    total = fovm_map_layout(info, m);
    mem = total < (size_t)-1 ? fovm_alloc(vm, (size_t)total, tag) : NULL;
    if (!mem) {
        fovm_fail(err, FOVM_E_NOMEM, -1, "no memory for map %s (%U bytes)", info->name, total);
        return NULL;
    }
    fovm_map_format(m, mem, total);
    vm->maps[vm->nmaps++] = m;
    return m;
}

fovm_map *fovm_map_create(fovm_vm *vm, const fovm_map_info *info, fovm_error *err)
{
    struct fovm_map *m;
    if (!vm || !info) {
        fovm_fail(err, FOVM_E_INVAL, -1, "no vm or no map info");
        return NULL;
    }
    m = fovm_map_new(vm, info, FOVM_TAG_MAPS, err);
    if (m)
        fovm_relink(vm);
    return m;
}

void *fovm_map_value_ptr(struct fovm_map *map, uint32_t index)
{
    return map->data + (size_t)index * map->vstride;
}

int fovm_map_owned(const struct fovm_vm *vm, uint64_t ptr)
{
    uint32_t i;
    for (i = 0; i < vm->nmaps; i++)
        if ((uint64_t)(uintptr_t)vm->maps[i] == ptr)
            return 1;
    return 0;
}

size_t fovm_map_count(const fovm_vm *vm) { return vm ? vm->nmaps : 0; }

fovm_map *fovm_map_at(fovm_vm *vm, size_t index)
{
    return vm && index < vm->nmaps ? vm->maps[index] : NULL;
}

fovm_map *fovm_map_find(fovm_vm *vm, const char *name)
{
    uint32_t i;
    for (i = 0; vm && name && i < vm->nmaps; i++)
        if (fovm_streq(vm->maps[i]->info.name, name))
            return vm->maps[i];
    return NULL;
}

void fovm_map_get_info(const fovm_map *map, fovm_map_info *info)
{
    fovm_copy(info, &map->info, sizeof *info);
}

static int array_index(const struct fovm_map *m, const void *key, uint32_t *idx)
{
    fovm_copy(idx, key, 4);
    return *idx < m->info.max_entries;
}

int fovm_map_read(const struct fovm_map *m, const void *key, void *value, uint32_t max_tries)
{
    uint32_t tries, seq, idx;
    for (tries = 0; tries < max_tries; fovm_relax(++tries)) {
        const uint8_t *src;
        seq = fovm_read_begin(m);
        if (m->info.type == FOVM_MAP_ARRAY) {
            if (!array_index(m, key, &idx))
                return FOVM_E_NOENT;
            src = m->data + (size_t)idx * m->vstride;
        } else {
            struct fovm_hentry *e = fovm_hash_find(m, key);
            if (!e) {
                if (fovm_read_retry(m, seq))
                    continue;
                return FOVM_E_NOENT;
            }
            src = fovm_hval(m, e);
        }
        fovm_copy(value, src, m->info.value_size);
        if (!fovm_read_retry(m, seq))
            return FOVM_OK;
    }
    return FOVM_E_STATE;
}

int fovm_map_lookup(fovm_map *map, const void *key, void *value, fovm_error *err)
{
    int rc;
    if (!map || !key || !value)
        return fovm_fail(err, FOVM_E_INVAL, -1, "no map, key or value buffer");
    rc = fovm_map_read(map, key, value, FOVM_HOST_TRIES);
    if (rc == FOVM_E_NOENT)
        return fovm_fail(err, rc, -1, "no such key in map %s", map->info.name);
    if (rc)
        return fovm_fail(err, rc, -1, "map %s kept changing while being read", map->info.name);
    return FOVM_OK;
}

int fovm_map_update(fovm_map *map, const void *key, const void *value, uint64_t flags,
                    fovm_error *err)
{
    uint32_t idx;
    int rc;
    if (!map || !key || !value || flags > FOVM_EXIST)
        return fovm_fail(err, FOVM_E_INVAL, -1, "no map, key or value, or flags not 0, 1 or 2");
    if (map->info.type != FOVM_MAP_ARRAY)
        return fovm_hash_update(map, key, value, flags, err);
    if (!array_index(map, key, &idx))
        return fovm_fail(err, FOVM_E_NOENT, -1, "index %u is outside array map %s of %u entries",
                         idx, map->info.name, map->info.max_entries);
    if (flags == FOVM_NOEXIST)
        return fovm_fail(err, FOVM_E_EXIST, -1, "array map %s: every index exists",
                         map->info.name);
    if ((rc = fovm_write_begin(map, err)) != 0)
        return rc;
    fovm_copy(map->data + (size_t)idx * map->vstride, value, map->info.value_size);
    if (idx >= map->hdr->rows && !fovm_is_zero(value, map->info.value_size))
        map->hdr->rows = idx + 1; /* zeros past the count keep it */
    fovm_write_end(map);
    return FOVM_OK;
}

int fovm_map_delete(fovm_map *map, const void *key, fovm_error *err)
{
    if (!map || !key)
        return fovm_fail(err, FOVM_E_INVAL, -1, "no map or key");
    if (map->info.type == FOVM_MAP_ARRAY)
        return fovm_fail(err, FOVM_E_INVAL, -1, "cannot delete from array map %s",
                         map->info.name);
    return fovm_hash_delete(map, key, err);
}

int fovm_map_next_key(fovm_map *map, const void *key, void *next_key, fovm_error *err)
{
    uint32_t idx = 0, tries;
    if (!map || !next_key)
        return fovm_fail(err, FOVM_E_INVAL, -1, "no map or next_key buffer");
    if (map->info.type == FOVM_MAP_ARRAY) {
        if (key && array_index(map, key, &idx))
            idx++;
        else if (key)
            idx = 0;
        if (idx >= map->info.max_entries)
            return FOVM_E_NOENT;
        fovm_copy(next_key, &idx, 4);
        return FOVM_OK;
    }
    for (tries = 0; tries < FOVM_HOST_TRIES; fovm_relax(++tries)) {
        uint32_t seq = fovm_read_begin(map);
        int rc = fovm_hash_next(map, key, next_key);
        if (!fovm_read_retry(map, seq))
            return rc;
    }
    return fovm_fail(err, FOVM_E_STATE, -1, "map %s kept changing while being read",
                     map->info.name);
}
