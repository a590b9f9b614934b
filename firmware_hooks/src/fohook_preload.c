/*
 * The LD_PRELOAD side of libfreeoffload_hook.so: at load, point the GOT slots for connect()
 * and dlopen() of every loaded object at our hooks; after each dlopen() that loaded something,
 * do the same for the new objects.
 *
 * dlopen() looks a bare file name up in the search path of the object that called it (its
 * RPATH and RUNPATH); a hook that simply called dlopen() itself would search ours instead and
 * break the caller's lookups. So for a bare name not yet loaded, the hook asks for the
 * caller's search path (dlinfo RTLD_DI_SERINFO: its RPATH, LD_LIBRARY_PATH, RUNPATH, system
 * directories, in the loader's order) and opens the first match by its full path, as the
 * loader would have; only a name in none of them is left to the loader's cache.
 */
#include "fohook_internal.h"
#include "fohook_runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef void *(*fohook_dlopen_fn)(const char *, int);

static fohook_dlopen_fn fohook_real_dlopen;
static pthread_mutex_t fohook_walk_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t fohook_walked;             /* objects already walked, in dl_iterate_phdr order */
static unsigned long long fohook_subs;   /* dlpi_subs at the last walk */

static int fohook_connect_hook(int fd, const struct sockaddr *addr, socklen_t len)
{
    return fohook_runtime_connect(fd, addr, len);
}

static void *fohook_dlopen_hook(const char *file, int mode);

static int fohook_skip(const struct dl_phdr_info *info)
{
    const char *name = info->dlpi_name;
    if (strstr(name, "linux-vdso") != NULL || strstr(name, "linux-gate") != NULL)
        return 1;
    /* our own object: its calls to connect() and dlopen() must reach the real ones */
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, self = (uintptr_t)fohook_connect_hook;
        if (ph->p_type == PT_LOAD && self >= start && self < start + ph->p_memsz)
            return 1;
    }
    return 0;
}

static void fohook_hook_object(const struct dl_phdr_info *info)
{
    fohook *h;
    fohook_err err = {0, ""};
    if (fohook_open_info(&h, info, &err) != FOHOOK_OK) {
        if (err.code != FOHOOK_E_FORMAT)
            fohook_debug("cannot open '%s': %s", info->dlpi_name, fohook_error(&err));
        return;
    }
    fohook_target targets[2] = {{"connect", (void *)fohook_connect_hook, {0}, 0, 0, NULL},
                                {"dlopen", (void *)fohook_dlopen_hook, {0}, 0, 0, NULL}};
    if (fohook_replace_targets(h, targets, 2, &err) != FOHOOK_OK)
        fohook_debug("cannot hook connect/dlopen in '%s': %s",
                     info->dlpi_name[0] ? info->dlpi_name : "the program", fohook_error(&err));
    fohook_close(h);
}

struct fohook_walk {
    size_t index;
    size_t skip;
    unsigned long long subs;
};

static int fohook_walk_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct fohook_walk *w = data;
    if (w->index == 0 && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        w->subs = info->dlpi_subs;
    if (w->index++ >= w->skip && !fohook_skip(info))
        fohook_hook_object(info);
    return 0;
}

/* Hook the objects loaded since the last walk (all of them after a dlclose). */
static void fohook_walk(void)
{
    pthread_mutex_lock(&fohook_walk_lock);
    struct fohook_walk w = {0, fohook_walked, 0};
    unsigned long long subs_before = fohook_subs;
    dl_iterate_phdr(fohook_walk_cb, &w);
    if (w.subs != subs_before && w.skip > 0) {
        w.index = 0;
        w.skip = 0;
        dl_iterate_phdr(fohook_walk_cb, &w);
    }
    fohook_walked = w.index;
    fohook_subs = w.subs;
    pthread_mutex_unlock(&fohook_walk_lock);
}

/* The full path of `file` in the first of the caller's search directories holding it (to
 * free), or NULL. */
static char *fohook_caller_path(const char *file, const void *caller)
{
    void *lm = NULL;
    Dl_info dli;
    Dl_serinfo size;
    if (dladdr1(caller, &dli, &lm, RTLD_DL_LINKMAP) == 0 || lm == NULL ||
        dlinfo(lm, RTLD_DI_SERINFOSIZE, &size) != 0 || size.dls_cnt == 0)
        return NULL;
    Dl_serinfo *si = malloc(size.dls_size);
    if (si == NULL)
        return NULL;
    si->dls_size = size.dls_size;
    si->dls_cnt = size.dls_cnt;
    char *found = NULL;
    if (dlinfo(lm, RTLD_DI_SERINFO, si) == 0) {
        for (unsigned i = 0; i < si->dls_cnt && found == NULL; i++) {
            size_t n = strlen(si->dls_serpath[i].dls_name) + strlen(file) + 2;
            char *path = malloc(n);
            if (path == NULL)
                break;
            strcpy(path, si->dls_serpath[i].dls_name);
            strcat(path, "/");
            strcat(path, file);
            if (access(path, F_OK) == 0)
                found = path;
            else
                free(path);
        }
    }
    free(si);
    return found;
}

static void *fohook_dlopen_hook(const char *file, int mode)
{
    void *caller = __builtin_return_address(0);
    void *handle = NULL;
    if (file != NULL && strchr(file, '/') == NULL) {
        handle = fohook_real_dlopen(file, mode | RTLD_NOLOAD);
        if (handle == NULL) {
            char *path = fohook_caller_path(file, caller);
            if (path != NULL) {
                handle = fohook_real_dlopen(path, mode);
                free(path);
            }
        }
    }
    if (handle == NULL)
        handle = fohook_real_dlopen(file, mode);
    if (handle != NULL)
        fohook_walk();
    return handle;
}

/* A fork() while another thread walked leaves the child's lock held by no one. */
static void fohook_preload_after_fork(void)
{
    pthread_mutex_init(&fohook_walk_lock, NULL);
}

__attribute__((constructor)) static void fohook_preload_init(void)
{
    const char *debug = getenv("FREEOFFLOAD_HOOK_DEBUG");
    fohook_debug_on = debug != NULL && debug[0] != '\0' && strcmp(debug, "0") != 0;
    fohook_real_dlopen = (fohook_dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
    if (fohook_real_dlopen == NULL || fohook_runtime_init() != 0) {
        fohook_debug("cannot find the real connect() or dlopen(): not hooking");
        return;
    }
    pthread_atfork(NULL, NULL, fohook_preload_after_fork);
    fohook_walk();
}
