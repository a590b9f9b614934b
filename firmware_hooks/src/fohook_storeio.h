/* Reading the policy store: shared by the hook (read-only) and the writer (not installed). */
#ifndef FOHOOK_STOREIO_H
#define FOHOOK_STOREIO_H

#include "fohook_internal.h"
#include "fohook_store.h"
#include "fovm.h"

#include <string.h>

#define FOHOOK_PATH_MAX 4096
#define FOHOOK_BUDGET 1000000 /* instructions one policy run may execute */

struct fohook_store_header {
    char magic[8];
    uint64_t generation;
    uint64_t reserved[6];
};

/* 1 when a map of this name is process-local (no store file; see fohook_store.h). */
static inline int fohook_map_is_local(const char *name)
{
    return strncmp(name, FOHOOK_LOCAL_PREFIX, sizeof FOHOOK_LOCAL_PREFIX - 1) == 0;
}

/* The meta file of one generation. */
struct fohook_meta {
    char name[64];
    uint32_t version;
    char section[64]; /* "" for the first program section */
};

/* One generation's policy loaded into a VM, its maps attached to the store's files. */
struct fohook_loaded {
    fovm_vm *vm;
    char section[64]; /* the program section ("" for the first) */
    void *elf;
    size_t elf_len;
    size_t nmaps;    /* maps attached to store files */
    size_t nlocal;   /* process-local maps, in the VM's own memory */
    void *mem[FOHOOK_STORE_MAX_MAPS];
    size_t len[FOHOOK_STORE_MAX_MAPS];
};

/* "DIR/gen-N/LEAF" (leaf may be ""). FOHOOK_E_INVAL when it does not fit. */
FOHOOK_HIDDEN int fohook_store_path(char *buf, size_t n, const char *dir, uint64_t gen,
                                    const char *leaf, fohook_err *err);
FOHOOK_HIDDEN int fohook_read_file(const char *path, void **buf, size_t *len, fohook_err *err);
FOHOOK_HIDDEN int fohook_store_read_meta(const char *dir, uint64_t gen, struct fohook_meta *m,
                                         fohook_err *err);
/* Map DIR/generation (read-only, or read-write for the writer). */
FOHOOK_HIDDEN int fohook_store_map_header(const char *dir, int writable,
                                          struct fohook_store_header **out, fohook_err *err);
/* Load generation `gen`: FOHOOK_E_NO_POLICY when it has no directory. Maps are attached
 * shared read-write for the writer, private (copy on write) for readers: a hooked program
 * never changes the store, and a policy writing to a map cannot fault its host. */
FOHOOK_HIDDEN int fohook_store_open_gen(const char *dir, uint64_t gen, int writable,
                                        struct fohook_loaded *out, fohook_err *err);
FOHOOK_HIDDEN void fohook_store_close_gen(struct fohook_loaded *l);

#endif
