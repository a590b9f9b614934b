/* Map operations on the installed policy of a store, in place, under the writer's lock. */
#include "fohook_store_int.h"

#include <stdlib.h>
#include <string.h>

/* Lock the store, load its current generation with writable maps and find `name`. */
static int fohook_open_map(const char *dir, const char *name, struct fohook_locked *s,
                           struct fohook_loaded *l, fovm_map **map, fovm_map_info *info,
                           fohook_err *err)
{
    if (name != NULL && fohook_map_is_local(name))
        return fohook_fail(err, FOHOOK_E_NO_MAP, "map '%s' is process-local: each hooked "
                           "process keeps its own rows, the store holds none", name);
    int rc = fohook_store_lock(dir, s, err);
    if (rc != FOHOOK_OK)
        return rc;
    rc = fohook_store_open_gen(dir, s->gen, 1, l, err);
    if (rc == FOHOOK_E_NO_POLICY)
        rc = fohook_fail(err, rc, "the store %s holds no installed policy", dir);
    if (rc == FOHOOK_OK) {
        *map = name != NULL ? fovm_map_find(l->vm, name) : NULL;
        if (*map == NULL)
            rc = fohook_fail(err, FOHOOK_E_NO_MAP, "the installed policy has no map '%s'",
                             name ? name : "");
        else
            fovm_map_get_info(*map, info);
        if (rc != FOHOOK_OK)
            fohook_store_close_gen(l);
    }
    if (rc != FOHOOK_OK)
        fohook_store_unlock(s);
    return rc;
}

static void fohook_close_map(struct fohook_locked *s, struct fohook_loaded *l)
{
    fohook_store_close_gen(l);
    fohook_store_unlock(s);
}

static int fohook_check_sizes(const fovm_map_info *info, size_t key_size, size_t value_size,
                              fohook_err *err)
{
    if (key_size != info->key_size || (value_size != 0 && value_size != info->value_size))
        return fohook_fail(err, FOHOOK_E_MAP, "map %s has %u-byte keys and %u-byte values, got "
                           "%zu and %zu", info->name, (unsigned)info->key_size,
                           (unsigned)info->value_size, key_size, value_size);
    return FOHOOK_OK;
}

int fohook_store_update(const char *dir, const char *map_name, const void *keys, size_t key_size,
                        const void *values, size_t value_size, size_t count, fohook_err *err)
{
    struct fohook_locked s;
    struct fohook_loaded l;
    fovm_map *map;
    fovm_map_info info;
    if (keys == NULL || values == NULL || value_size == 0)
        return fohook_fail(err, FOHOOK_E_INVAL, "update needs keys and values");
    int rc = fohook_open_map(dir, map_name, &s, &l, &map, &info, err);
    if (rc != FOHOOK_OK)
        return rc;
    rc = fohook_check_sizes(&info, key_size, value_size, err);
    fovm_error verr = {0, -1, ""};
    for (size_t i = 0; i < count && rc == FOHOOK_OK; i++)
        if (fovm_map_update(map, (const char *)keys + i * key_size,
                            (const char *)values + i * value_size, FOVM_ANY, &verr) != FOVM_OK)
            rc = fohook_fail(err, FOHOOK_E_MAP, "map %s, row %zu: %s", info.name, i, verr.msg);
    fohook_close_map(&s, &l);
    return rc;
}

int fohook_store_delete(const char *dir, const char *map_name, const void *key, size_t key_size,
                        fohook_err *err)
{
    struct fohook_locked s;
    struct fohook_loaded l;
    fovm_map *map;
    fovm_map_info info;
    int rc = fohook_open_map(dir, map_name, &s, &l, &map, &info, err);
    if (rc != FOHOOK_OK)
        return rc;
    rc = fohook_check_sizes(&info, key_size, 0, err);
    fovm_error verr = {0, -1, ""};
    if (rc == FOHOOK_OK && fovm_map_delete(map, key, &verr) != FOVM_OK)
        rc = fohook_fail(err, FOHOOK_E_MAP, "map %s: %s", info.name, verr.msg);
    fohook_close_map(&s, &l);
    return rc;
}

int fohook_store_items(const char *dir, const char *map_name, void *keys, size_t key_size,
                       void *values, size_t value_size, size_t capacity, size_t *count,
                       fohook_err *err)
{
    struct fohook_locked s;
    struct fohook_loaded l;
    fovm_map *map;
    fovm_map_info info;
    int rc = fohook_open_map(dir, map_name, &s, &l, &map, &info, err);
    if (rc != FOHOOK_OK)
        return rc;
    rc = fohook_check_sizes(&info, key_size, value_size, err);
    fovm_error verr = {0, -1, ""};
    char *cur = malloc(key_size), *last = malloc(key_size), *swap;
    int have_last = 0;
    size_t n = 0;
    if (cur == NULL || last == NULL)
        rc = fohook_fail(err, FOHOOK_E_NOMEM, "out of memory");
    while (rc == FOHOOK_OK && n <= info.max_entries &&
           fovm_map_next_key(map, have_last ? last : NULL, cur, &verr) == FOVM_OK) {
        if (n < capacity && fovm_map_lookup(map, cur, (char *)values + n * value_size,
                                            &verr) == FOVM_OK)
            memcpy((char *)keys + n * key_size, cur, key_size);
        n++;
        swap = cur;
        cur = last;
        last = swap;
        have_last = 1;
    }
    *count = n;
    free(cur);
    free(last);
    fohook_close_map(&s, &l);
    return rc;
}
