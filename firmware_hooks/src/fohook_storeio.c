/* Reading the policy store (see fohook_store.h for the layout). */
#include "fohook_storeio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int fohook_store_path(char *buf, size_t n, const char *dir, uint64_t gen, const char *leaf,
                      fohook_err *err)
{
    int m = snprintf(buf, n, "%s/gen-%llu%s%s", dir, (unsigned long long)gen,
                     leaf[0] ? "/" : "", leaf);
    if (m < 0 || (size_t)m >= n)
        return fohook_fail(err, FOHOOK_E_INVAL, "store path too long: %s", dir);
    return FOHOOK_OK;
}

int fohook_read_file(const char *path, void **buf, size_t *len, fohook_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return fohook_fail(err, errno == ENOENT ? FOHOOK_E_NO_POLICY : FOHOOK_E_IO,
                           "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > (64 << 20)) {
        close(fd);
        return fohook_fail(err, FOHOOK_E_IO, "%s: empty, unreadable or larger than 64 MiB", path);
    }
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (data != NULL && got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (data == NULL || got != (size_t)st.st_size) {
        free(data);
        return fohook_fail(err, FOHOOK_E_IO, "cannot read %s", path);
    }
    data[got] = '\0';
    *buf = data;
    *len = got;
    return FOHOOK_OK;
}

int fohook_store_read_meta(const char *dir, uint64_t gen, struct fohook_meta *m, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    void *text;
    size_t len;
    int rc = fohook_store_path(path, sizeof path, dir, gen, "meta", err);
    if (rc == FOHOOK_OK)
        rc = fohook_read_file(path, &text, &len, err);
    if (rc != FOHOOK_OK)
        return rc;
    memset(m, 0, sizeof *m);
    int have = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned v;
        if (sscanf(line, "name %63s", m->name) == 1)
            have |= 1;
        else if (sscanf(line, "version %u", &v) == 1) {
            m->version = v;
            have |= 2;
        } else if (sscanf(line, "section %63s", m->section) == 1)
            have |= 4;
    }
    free(text);
    if (have != 7)
        return fohook_fail(err, FOHOOK_E_IO, "%s: needs name, version and section lines", path);
    if (strcmp(m->section, "-") == 0)
        m->section[0] = '\0';
    return FOHOOK_OK;
}

int fohook_store_map_header(const char *dir, int writable, struct fohook_store_header **out,
                            fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/generation", dir) >= (int)sizeof path)
        return fohook_fail(err, FOHOOK_E_INVAL, "store path too long: %s", dir);
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return fohook_fail(err, errno == ENOENT ? FOHOOK_E_NO_POLICY : FOHOOK_E_IO,
                           "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    void *mem = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(struct fohook_store_header))
        mem = mmap(NULL, sizeof(struct fohook_store_header),
                   PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED)
        return fohook_fail(err, FOHOOK_E_IO, "cannot map %s", path);
    if (memcmp(mem, FOHOOK_STORE_MAGIC, 8) != 0) {
        munmap(mem, sizeof(struct fohook_store_header));
        return fohook_fail(err, FOHOOK_E_IO, "%s: not a freeoffload store (bad magic)", path);
    }
    *out = mem;
    return FOHOOK_OK;
}

static int fohook_attach_map(const char *dir, uint64_t gen, int writable, fovm_map *map,
                             struct fohook_loaded *l, fohook_err *err)
{
    fovm_map_info info;
    char leaf[96], path[FOHOOK_PATH_MAX];
    fovm_map_get_info(map, &info);
    snprintf(leaf, sizeof leaf, "maps/%s", info.name);
    int rc = fohook_store_path(path, sizeof path, dir, gen, leaf, err);
    if (rc != FOHOOK_OK)
        return rc;
    size_t need = fovm_map_storage_size(&info);
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size != need) {
        if (fd >= 0)
            close(fd);
        return fohook_fail(err, FOHOOK_E_IO, "%s: missing or not %zu bytes", path, need);
    }
    void *mem = mmap(NULL, need, PROT_READ | PROT_WRITE, writable ? MAP_SHARED : MAP_PRIVATE,
                     fd, 0);
    close(fd);
    if (mem == MAP_FAILED)
        return fohook_fail(err, FOHOOK_E_IO, "cannot map %s: %s", path, strerror(errno));
    l->mem[l->nmaps] = mem;
    l->len[l->nmaps++] = need;
    fovm_error verr = {0, -1, ""};
    if (fovm_map_attach_storage(map, mem, need, 0, &verr) != FOVM_OK)
        return fohook_fail(err, FOHOOK_E_MAP, "%s: %s", path, verr.msg);
    return FOHOOK_OK;
}

/* bpf_trace_printk of a policy in a hooked program: a debug line. */
static void fohook_trace(void *user, const char *text, size_t len)
{
    (void)user;
    fohook_debug("policy: %.*s", (int)(len > 256 ? 256 : len), text);
}

int fohook_store_open_gen(const char *dir, uint64_t gen, int writable, struct fohook_loaded *l,
                          fohook_err *err)
{
    struct fohook_meta meta;
    char path[FOHOOK_PATH_MAX];
    fovm_error verr = {0, -1, "cannot create or configure the vm"};
    memset(l, 0, sizeof *l);
    int rc = fohook_store_read_meta(dir, gen, &meta, err);
    if (rc == FOHOOK_OK)
        rc = fohook_store_path(path, sizeof path, dir, gen, "policy.o", err);
    if (rc == FOHOOK_OK)
        rc = fohook_read_file(path, &l->elf, &l->elf_len, err);
    if (rc != FOHOOK_OK)
        return rc;
    memcpy(l->section, meta.section, sizeof l->section);
    l->vm = fovm_create(&verr);
    if (l->vm == NULL || fovm_set_budget(l->vm, FOHOOK_BUDGET) != FOVM_OK ||
        fovm_load_elf(l->vm, l->elf, l->elf_len, meta.section[0] ? meta.section : NULL,
                      &verr) != FOVM_OK) {
        fohook_store_close_gen(l);
        return fohook_fail(err, FOHOOK_E_POLICY, "policy of generation %llu: %s",
                           (unsigned long long)gen, verr.msg);
    }
    if (!writable && fohook_debug_on)
        fovm_set_trace(l->vm, fohook_trace, NULL);
    size_t n = fovm_map_count(l->vm);
    if (n > FOHOOK_STORE_MAX_MAPS)
        rc = fohook_fail(err, FOHOOK_E_POLICY, "policy has %zu maps, at most %d allowed", n,
                         FOHOOK_STORE_MAX_MAPS);
    for (size_t i = 0; i < n && rc == FOHOOK_OK; i++) {
        fovm_map_info info;
        fovm_map_get_info(fovm_map_at(l->vm, i), &info);
        if (fohook_map_is_local(info.name))
            l->nlocal++; /* stays in the VM's own zeroed memory: this process's state */
        else
            rc = fohook_attach_map(dir, gen, writable, fovm_map_at(l->vm, i), l, err);
    }
    if (rc != FOHOOK_OK)
        fohook_store_close_gen(l);
    return rc;
}

void fohook_store_close_gen(struct fohook_loaded *l)
{
    if (l->vm != NULL)
        fovm_destroy(l->vm);
    for (size_t i = 0; i < l->nmaps; i++)
        munmap(l->mem[i], l->len[i]);
    free(l->elf);
    memset(l, 0, sizeof *l);
}
