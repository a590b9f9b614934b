/* Internal declarations shared by the hook library's sources (not installed). */
#ifndef FOHOOK_INTERNAL_H
#define FOHOOK_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* also given on the command line: headers before this one need it */
#endif
#include <link.h>
#include <stdarg.h>
#include <stdint.h>

#include "fohook.h"

#define FOHOOK_HIDDEN __attribute__((visibility("hidden")))

/* Set err (may be NULL) and return code. */
FOHOOK_HIDDEN int fohook_fail(fohook_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Open the object a dl_iterate_phdr callback was given (binary-format backend). */
FOHOOK_HIDDEN int fohook_open_info(fohook **out, const struct dl_phdr_info *info,
                                   fohook_err *err);

#define FOHOOK_MAX_SYMS 8

/* One function to point GOT slots at: fohook_replace_targets fills the fields after func. */
typedef struct fohook_target {
    const char *name;
    void *func;
    size_t syms[FOHOOK_MAX_SYMS]; /* dynamic symbols named `name` */
    int nsyms;                    /* -1: names compared per relocation */
    int found;                    /* some slot pointed, or now points, at func */
    void *old;                    /* the function the first slot led to (NULL: was func) */
} fohook_target;

/* fohook_replace for several functions in one pass over the relocations; FOHOOK_OK also
 * when some were not found (see each target's `found`). */
FOHOOK_HIDDEN int fohook_replace_targets(fohook *h, fohook_target *targets, size_t n,
                                         fohook_err *err);

/* One line on stderr when FREEOFFLOAD_HOOK_DEBUG=1; async-signal-safe (write(2) only). */
FOHOOK_HIDDEN void fohook_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
FOHOOK_HIDDEN extern int fohook_debug_on;

#endif
