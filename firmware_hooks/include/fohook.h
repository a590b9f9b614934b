/*
 * fohook: rewrite GOT slots of loaded ELF objects so that calls to a function go to a hook.
 *
 * Shaped like kubo/plthook: open an object, replace a function by name (the old function
 * pointer is handed back), close. Errors go into a caller-supplied fohook_err (may be NULL):
 * thread-safe, nothing to free, no global buffer. Messages are lowercase, no trailing newline.
 *
 *     fohook *h; fohook_err err; void *old;
 *     if (fohook_open(&h, NULL, &err) == FOHOOK_OK) {          // NULL: the main program
 *         fohook_replace(h, "connect", (void *)my_connect, &old, &err);
 *         fohook_close(h);
 *     }
 *
 * Both kinds of slot are rewritten: JUMP_SLOT (calls through the PLT) and GLOB_DAT (calls
 * compiled with -fno-plt, and taken addresses). Slots inside a RELRO segment (-z relro,
 * -z now) are made writable for the write and read-only again afterwards.
 */
#ifndef FOHOOK_H
#define FOHOOK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FOHOOK_API __attribute__((visibility("default")))
#else
#define FOHOOK_API
#endif

typedef enum fohook_status {
    FOHOOK_OK = 0,
    FOHOOK_E_INVAL = 1,       /* bad argument from the caller */
    FOHOOK_E_NOT_FOUND = 2,   /* no such object, or the object has no slot for the function */
    FOHOOK_E_FORMAT = 3,      /* the object's dynamic section is missing or malformed */
    FOHOOK_E_PROTECT = 4,     /* mprotect refused to make a slot writable */
    FOHOOK_E_NOMEM = 5,       /* out of memory */
    FOHOOK_E_IO = 6,          /* a store file could not be opened, read, written or mapped */
    FOHOOK_E_POLICY = 7,      /* the VM refused the policy (its message follows) */
    FOHOOK_E_NO_POLICY = 8,   /* the store holds no installed policy */
    FOHOOK_E_NO_MAP = 9,      /* the installed policy has no map of that name */
    FOHOOK_E_MAP = 10,        /* a map operation failed (size, full, missing key) */
    FOHOOK_E_UNSUPPORTED = 11 /* not available on this platform */
} fohook_status;

typedef struct fohook_err {
    int code;      /* a fohook_status */
    char msg[256]; /* lowercase, no trailing newline */
} fohook_err;

typedef struct fohook fohook;

/* Open a loaded object by file name as the loader knows it (NULL or "": the main program; a
 * name without '/' also matches the end of a path, e.g. "libc.so.6"). */
FOHOOK_API int fohook_open(fohook **out, const char *filename, fohook_err *err);
/* Open the loaded object holding `address` (a function or data address inside it). */
FOHOOK_API int fohook_open_by_address(fohook **out, const void *address, fohook_err *err);
/* Point every JUMP_SLOT and GLOB_DAT slot for `funcname` at `newfunc`. *oldfunc (may be NULL)
 * receives the function the slots pointed to (resolved when binding was still lazy), or NULL
 * when they already pointed at `newfunc` or it cannot be resolved. FOHOOK_E_NOT_FOUND when
 * the object has no slot for `funcname`. */
FOHOOK_API int fohook_replace(fohook *h, const char *funcname, void *newfunc, void **oldfunc,
                              fohook_err *err);
FOHOOK_API void fohook_close(fohook *h);
/* The message of `err`, or a description of its code when it has none. Never NULL. */
FOHOOK_API const char *fohook_error(const fohook_err *err);

#ifdef __cplusplus
}
#endif
#endif /* FOHOOK_H */
