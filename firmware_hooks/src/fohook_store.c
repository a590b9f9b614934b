/* Writing the policy store (libfreeoffload_store.so); layout in fohook_store.h. */
#include "fohook_storeio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fohook_store_int.h"

static int fohook_write_file(const char *path, const void *data, size_t len, fohook_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (fd < 0 || done != len || close(fd) != 0)
        return fohook_fail(err, FOHOOK_E_IO, "cannot write %s: %s", path, strerror(errno));
    return FOHOOK_OK;
}

int fohook_store_init(const char *dir, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    if (dir == NULL || snprintf(path, sizeof path, "%s/generation", dir) >= (int)sizeof path)
        return fohook_fail(err, FOHOOK_E_INVAL, "store directory missing or too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fohook_fail(err, FOHOOK_E_IO, "cannot create %s: %s", dir, strerror(errno));
    if (access(path, F_OK) == 0)
        return FOHOOK_OK;
    struct fohook_store_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FOHOOK_STORE_MAGIC, 8);
    char tmp[FOHOOK_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = fohook_write_file(tmp, &h, sizeof h, err);
    if (rc == FOHOOK_OK && rename(tmp, path) != 0)
        rc = fohook_fail(err, FOHOOK_E_IO, "cannot create %s: %s", path, strerror(errno));
    return rc;
}

int fohook_store_generation(const char *dir, uint64_t *gen, fohook_err *err)
{
    struct fohook_store_header *h;
    int rc = fohook_store_map_header(dir, 0, &h, err);
    if (rc == FOHOOK_E_NO_POLICY) {
        *gen = 0;
        return FOHOOK_OK;
    }
    if (rc != FOHOOK_OK)
        return rc;
    *gen = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    munmap(h, sizeof *h);
    return FOHOOK_OK;
}

int fohook_store_lock(const char *dir, struct fohook_locked *s, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX];
    int rc = fohook_store_init(dir, err);
    if (rc != FOHOOK_OK)
        return rc;
    snprintf(path, sizeof path, "%s/lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX) != 0) {
        if (s->lock_fd >= 0)
            close(s->lock_fd);
        return fohook_fail(err, FOHOOK_E_IO, "cannot lock %s: %s", path, strerror(errno));
    }
    rc = fohook_store_map_header(dir, 1, &s->header, err);
    if (rc != FOHOOK_OK) {
        close(s->lock_fd);
        return rc;
    }
    s->gen = __atomic_load_n(&s->header->generation, __ATOMIC_ACQUIRE);
    return FOHOOK_OK;
}

void fohook_store_unlock(struct fohook_locked *s)
{
    munmap(s->header, sizeof *s->header);
    close(s->lock_fd); /* releases the flock */
}

static void fohook_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[FOHOOK_PATH_MAX];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
            continue;
        if (e->d_type == DT_DIR)
            fohook_remove_tree(sub);
        else
            unlink(sub);
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

/* Publish generation `gen` and remove generations older than the two before it. */
void fohook_store_publish(const char *dir, struct fohook_locked *s, uint64_t gen)
{
    char path[FOHOOK_PATH_MAX];
    __atomic_store_n(&s->header->generation, gen, __ATOMIC_RELEASE);
    msync(s->header, sizeof *s->header, MS_ASYNC);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long g;
        char rest[8] = "";
        if (sscanf(e->d_name, "gen-%llu%7s", &g, rest) < 1 || (rest[0] && strcmp(rest, ".tmp")))
            continue;
        if (g + 2 < gen || g > gen) { /* too old, or a failed install's leftovers */
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            fohook_remove_tree(path);
        }
    }
    if (d != NULL)
        closedir(d);
}

int fohook_store_remove(const char *dir, fohook_err *err)
{
    struct fohook_locked s;
    int rc = fohook_store_lock(dir, &s, err);
    if (rc != FOHOOK_OK)
        return rc;
    fohook_store_publish(dir, &s, s.gen + 1);
    fohook_store_unlock(&s);
    return FOHOOK_OK;
}

int fohook_store_write_tmp(const char *tmpdir, const char *name, uint32_t version,
                           const void *elf, size_t len, const char *section, fohook_err *err)
{
    char path[FOHOOK_PATH_MAX], meta[256];
    fohook_remove_tree(tmpdir);
    snprintf(path, sizeof path, "%s/maps", tmpdir);
    if (mkdir(tmpdir, 0755) != 0 || mkdir(path, 0755) != 0)
        return fohook_fail(err, FOHOOK_E_IO, "cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/policy.o", tmpdir);
    int rc = fohook_write_file(path, elf, len, err);
    if (rc != FOHOOK_OK)
        return rc;
    int n = snprintf(meta, sizeof meta, "name %s\nversion %u\nsection %s\n", name,
                     (unsigned)version, section && section[0] ? section : "-");
    snprintf(path, sizeof path, "%s/meta", tmpdir);
    return fohook_write_file(path, meta, (size_t)n, err);
}
