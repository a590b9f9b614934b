/* The store writer's internal declarations (not installed). */
#ifndef FOHOOK_STORE_INT_H
#define FOHOOK_STORE_INT_H

#include "fohook_storeio.h"

/* The store while a writer holds its lock. */
struct fohook_locked {
    int lock_fd;
    struct fohook_store_header *header; /* mapped read-write */
    uint64_t gen;                       /* the generation when the lock was taken */
};

FOHOOK_HIDDEN int fohook_store_lock(const char *dir, struct fohook_locked *s, fohook_err *err);
FOHOOK_HIDDEN void fohook_store_unlock(struct fohook_locked *s);
FOHOOK_HIDDEN void fohook_store_publish(const char *dir, struct fohook_locked *s, uint64_t gen);
/* Create TMPDIR with policy.o, meta (without map lines) and an empty maps/. */
FOHOOK_HIDDEN int fohook_store_write_tmp(const char *tmpdir, const char *name, uint32_t version,
                                         const void *elf, size_t len, const char *section,
                                         fohook_err *err);

#endif
