/* Installing a policy into the store and updating its maps in place. */
#include "fohook_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fohook_valid_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 63 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Formats `mem` as the map's storage, keeping the rows the loader put in (ELF data). */
static int fohook_format_map(fovm_map *map, const fovm_map_info *info, void *mem, size_t size,
                             fohook_err *err)
{
    size_t cap = info->max_entries, n = 0;
    char *keys = calloc(cap + 1, info->key_size), *vals = calloc(cap + 1, info->value_size);
    fovm_error verr = {0, -1, ""};
    int rc = FOHOOK_OK;
    if (keys == NULL || vals == NULL)
        rc = fohook_fail(err, FOHOOK_E_NOMEM, "out of memory copying map %s", info->name);
    const void *prev = NULL;
    while (rc == FOHOOK_OK && n < cap &&
           fovm_map_next_key(map, prev, keys + n * info->key_size, &verr) == FOVM_OK) {
        if (fovm_map_lookup(map, keys + n * info->key_size, vals + n * info->value_size,
                            &verr) == FOVM_OK)
            prev = keys + n++ * info->key_size;
        else
            break;
    }
    if (rc == FOHOOK_OK && fovm_map_attach_storage(map, mem, size, 1, &verr) != FOVM_OK)
        rc = fohook_fail(err, FOHOOK_E_MAP, "map %s: %s", info->name, verr.msg);
    for (size_t i = 0; rc == FOHOOK_OK && i < n; i++)
        if (fovm_map_update(map, keys + i * info->key_size, vals + i * info->value_size,
                            FOVM_ANY, &verr) != FOVM_OK)
            rc = fohook_fail(err, FOHOOK_E_MAP, "map %s: %s", info->name, verr.msg);
    free(keys);
    free(vals);
    return rc;
}

/* The previous generation's file for a same-shaped map, when rows are to be kept. */
static int fohook_open_previous(const char *dir, uint64_t prev, const fovm_map_info *info,
                                size_t size)
{
    char path[FOHOOK_PATH_MAX], leaf[96], want[160], line[160];
    snprintf(want, sizeof want, "map %s %u %u %u %u\n", info->name, (unsigned)info->type,
             (unsigned)info->key_size, (unsigned)info->value_size, (unsigned)info->max_entries);
    if (fohook_store_path(path, sizeof path, dir, prev, "meta", NULL) != FOHOOK_OK)
        return -1;
    FILE *f = fopen(path, "re");
    int same = 0;
    while (f != NULL && !same && fgets(line, sizeof line, f) != NULL)
        same = strcmp(line, want) == 0;
    if (f != NULL)
        fclose(f);
    snprintf(leaf, sizeof leaf, "maps/%s", info->name);
    if (!same || fohook_store_path(path, sizeof path, dir, prev, leaf, NULL) != FOHOOK_OK)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || (size_t)st.st_size != size)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int fohook_lay_out_map(const char *dir, const char *tmpdir, uint64_t prev, unsigned flags,
                              fovm_map *map, FILE *meta, fohook_err *err)
{
    fovm_map_info info;
    char path[FOHOOK_PATH_MAX];
    fovm_map_get_info(map, &info);
    if (fohook_map_is_local(info.name)) { /* each hooked process's own: no file */
        fprintf(meta, "local %s %u %u %u %u\n", info.name, (unsigned)info.type,
                (unsigned)info.key_size, (unsigned)info.value_size, (unsigned)info.max_entries);
        return FOHOOK_OK;
    }
    if (!fohook_valid_name(info.name))
        return fohook_fail(err, FOHOOK_E_POLICY, "map name '%s' cannot be a file name", info.name);
    size_t size = fovm_map_storage_size(&info);
    if (snprintf(path, sizeof path, "%s/maps/%s", tmpdir, info.name) >= (int)sizeof path)
        return fohook_fail(err, FOHOOK_E_INVAL, "store path too long: %s", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    void *mem = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (mem == MAP_FAILED)
        return fohook_fail(err, FOHOOK_E_IO, "cannot create %s: %s", path, strerror(errno));
    int old = (flags & FOHOOK_STORE_KEEP_MAPS) && strchr(info.name, '.') == NULL
                  ? fohook_open_previous(dir, prev, &info, size) : -1;
    int rc;
    fovm_error verr = {0, -1, ""};
    if (old >= 0) {
        ssize_t got = pread(old, mem, size, 0);
        close(old);
        rc = got == (ssize_t)size && fovm_map_attach_storage(map, mem, size, 0, &verr) == FOVM_OK
                 ? FOHOOK_OK
                 : fohook_fail(err, FOHOOK_E_MAP, "map %s: cannot keep its rows: %s", info.name,
                               verr.msg);
    } else {
        rc = fohook_format_map(map, &info, mem, size, err);
    }
    munmap(mem, size);
    fprintf(meta, "map %s %u %u %u %u\n", info.name, (unsigned)info.type,
            (unsigned)info.key_size, (unsigned)info.value_size, (unsigned)info.max_entries);
    return rc;
}

static int fohook_lay_out(const char *dir, const char *tmpdir, uint64_t prev, unsigned flags,
                          const void *elf, size_t len, const char *section, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    fovm_error verr = {0, -1, "cannot create the vm"};
    fovm_vm *vm = fovm_create(&verr);
    if (vm == NULL || fovm_load_elf(vm, elf, len, section, &verr) != FOVM_OK) {
        if (vm != NULL)
            fovm_destroy(vm);
        return fohook_fail(err, FOHOOK_E_POLICY, "policy refused: %s", verr.msg);
    }
    size_t n = fovm_map_count(vm);
    FILE *meta = snprintf(path, sizeof path, "%s/meta", tmpdir) < (int)sizeof path
                     ? fopen(path, "ae") : NULL;
    int rc = meta == NULL ? fohook_fail(err, FOHOOK_E_IO, "cannot append to %s", path)
             : n > FOHOOK_STORE_MAX_MAPS
                 ? fohook_fail(err, FOHOOK_E_POLICY, "policy has %zu maps, at most %d allowed", n,
                               FOHOOK_STORE_MAX_MAPS)
                 : FOHOOK_OK;
    for (size_t i = 0; i < n && rc == FOHOOK_OK; i++)
        rc = fohook_lay_out_map(dir, tmpdir, prev, flags, fovm_map_at(vm, i), meta, err);
    if (meta != NULL && fclose(meta) != 0 && rc == FOHOOK_OK)
        rc = fohook_fail(err, FOHOOK_E_IO, "cannot write %s", path);
    fovm_destroy(vm);
    return rc;
}

static int fohook_copy_meta(const char *tmpdir, char *meta, size_t meta_size, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    void *text;
    size_t len;
    if (snprintf(path, sizeof path, "%s/meta", tmpdir) >= (int)sizeof path)
        return fohook_fail(err, FOHOOK_E_INVAL, "store path too long: %s", tmpdir);
    int rc = fohook_read_file(path, &text, &len, err);
    if (rc != FOHOOK_OK)
        return rc;
    size_t n = len < meta_size - 1 ? len : meta_size - 1;
    memcpy(meta, text, n);
    meta[n] = '\0';
    free(text);
    return FOHOOK_OK;
}

int fohook_store_install(const char *dir, const char *name, uint32_t version, const void *elf,
                         size_t len, const char *section, unsigned flags, uint64_t *gen,
                         char *meta, size_t meta_size, fohook_err *err)
{
    char tmpdir[FOHOOK_PATH_MAX], final[FOHOOK_PATH_MAX];
    if (!fohook_valid_name(name) || (section != NULL && section[0] && !fohook_valid_name(section)))
        return fohook_fail(err, FOHOOK_E_INVAL, "policy name '%s' or section '%s' is not 1-63 "
                           "of A-Z a-z 0-9 _ . -", name ? name : "", section ? section : "");
    if (elf == NULL || len == 0)
        return fohook_fail(err, FOHOOK_E_INVAL, "empty policy object");
    struct fohook_locked s;
    int rc = fohook_store_lock(dir, &s, err);
    if (rc != FOHOOK_OK)
        return rc;
    uint64_t next = s.gen + 1;
    rc = fohook_store_path(final, sizeof final, dir, next, "", err);
    if (rc == FOHOOK_OK)
        rc = snprintf(tmpdir, sizeof tmpdir, "%s.tmp", final) < (int)sizeof tmpdir
                 ? FOHOOK_OK : fohook_fail(err, FOHOOK_E_INVAL, "store path too long");
    if (rc == FOHOOK_OK)
        rc = fohook_store_write_tmp(tmpdir, name, version, elf, len, section, err);
    if (rc == FOHOOK_OK)
        rc = fohook_lay_out(dir, tmpdir, s.gen, flags, elf, len, section, err);
    if (rc == FOHOOK_OK && meta != NULL && meta_size > 0)
        rc = fohook_copy_meta(tmpdir, meta, meta_size, err);
    if (rc == FOHOOK_OK && rename(tmpdir, final) != 0)
        rc = fohook_fail(err, FOHOOK_E_IO, "cannot rename %s: %s", tmpdir, strerror(errno));
    if (rc == FOHOOK_OK) {
        fohook_store_publish(dir, &s, next);
        if (gen != NULL)
            *gen = next;
    } else {
        fohook_store_publish(dir, &s, s.gen); /* removes the half-built directory */
    }
    fohook_store_unlock(&s);
    return rc;
}
