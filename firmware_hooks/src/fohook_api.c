/* fohook's format-independent part: finding loaded objects, errors and debug lines. */
#include "fohook_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fohook_debug_on;

int fohook_fail(fohook_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void fohook_debug(const char *fmt, ...)
{
    char line[320];
    if (!fohook_debug_on)
        return;
    int n = snprintf(line, sizeof line, "freeoffload-hook[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m
                                                                     : sizeof line - (size_t)n - 2);
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

struct fohook_find {
    const char *name;      /* match by name, or */
    const void *address;   /* match by an address inside a PT_LOAD segment */
    int first;             /* match the first object (the main program) */
    fohook **out;
    fohook_err *err;
    int rc;
};

static int fohook_name_matches(const char *path, const char *name)
{
    if (strcmp(path, name) == 0)
        return 1;
    if (strchr(name, '/') != NULL)
        return 0;
    const char *base = strrchr(path, '/');
    return base != NULL && strcmp(base + 1, name) == 0;
}

static int fohook_holds(const struct dl_phdr_info *info, const void *address)
{
    uintptr_t a = (uintptr_t)address;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a >= start && a < start + ph->p_memsz)
            return 1;
    }
    return 0;
}

static int fohook_find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct fohook_find *f = data;
    (void)size;
    int match = f->first || (f->name != NULL && fohook_name_matches(info->dlpi_name, f->name)) ||
                (f->address != NULL && fohook_holds(info, f->address));
    if (!match)
        return 0;
    f->rc = fohook_open_info(f->out, info, f->err);
    return 1;
}

static int fohook_find(struct fohook_find *f, const char *what)
{
    f->rc = -1;
    dl_iterate_phdr(fohook_find_cb, f);
    if (f->rc == -1)
        return fohook_fail(f->err, FOHOOK_E_NOT_FOUND, "no loaded object %s", what);
    return f->rc;
}

int fohook_open(fohook **out, const char *filename, fohook_err *err)
{
    if (out == NULL)
        return fohook_fail(err, FOHOOK_E_INVAL, "fohook_open needs somewhere to put the handle");
    int main_program = filename == NULL || filename[0] == '\0';
    struct fohook_find f = {main_program ? NULL : filename, NULL, main_program, out, err, 0};
    char what[200];
    snprintf(what, sizeof what, "named '%s'", main_program ? "" : filename);
    return fohook_find(&f, what);
}

int fohook_open_by_address(fohook **out, const void *address, fohook_err *err)
{
    if (out == NULL || address == NULL)
        return fohook_fail(err, FOHOOK_E_INVAL, "fohook_open_by_address needs a handle pointer "
                                                "and an address");
    struct fohook_find f = {NULL, address, 0, out, err, 0};
    char what[64];
    snprintf(what, sizeof what, "holds address %p", address);
    return fohook_find(&f, what);
}

static const char *const fohook_messages[] = {
    [FOHOOK_OK] = "success",
    [FOHOOK_E_INVAL] = "invalid argument",
    [FOHOOK_E_NOT_FOUND] = "not found",
    [FOHOOK_E_FORMAT] = "malformed or unsupported object",
    [FOHOOK_E_PROTECT] = "cannot change memory protection",
    [FOHOOK_E_NOMEM] = "out of memory",
    [FOHOOK_E_IO] = "store file error",
    [FOHOOK_E_POLICY] = "policy refused by the vm",
    [FOHOOK_E_NO_POLICY] = "no policy installed",
    [FOHOOK_E_NO_MAP] = "no such map",
    [FOHOOK_E_MAP] = "map operation failed",
    [FOHOOK_E_UNSUPPORTED] = "unsupported on this platform",
};

const char *fohook_error(const fohook_err *err)
{
    if (err == NULL)
        return "no error";
    if (err->msg[0] != '\0')
        return err->msg;
    if (err->code >= 0 && (size_t)err->code < sizeof fohook_messages / sizeof fohook_messages[0])
        return fohook_messages[err->code];
    return "unknown error";
}
