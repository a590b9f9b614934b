/*
 * The hooked connect(): fast path, policy generations and their safe reclamation.
 *
 * Hot path, no lock: one load of the store's generation word (a read-only shared mapping).
 * Only when it moved does a call take the reload lock: the first thread loads the new
 * generation, threads that noticed at the same time wait for it. A call protects the policy it runs with a hazard pointer
 * in its thread's slot; a replaced policy is retired and freed by a later reload once no slot
 * points at it.
 */
#include "fohook_runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fohook_ctx.h"
#include "fohook_reads.h"
#include "fohook_storeio.h"

#define FOHOOK_SLOTS 512
#define FOHOOK_RETRY_NS 100000000LL /* re-try a missing store at most every 100 ms */
#define FOHOOK_GEN_NONE UINT64_MAX    /* never a store generation: forces a load */

typedef int (*fohook_connect_fn)(int, const struct sockaddr *, socklen_t);

struct fohook_policy {
    uint64_t gen;
    int sock_kind; /* the policy reads the socket's type or protocol: ask the kernel */
    struct fohook_loaded l;
    struct fohook_policy *next; /* in the retired list */
};

struct fohook_slot {
    struct fohook_policy *hazard; /* the policy this thread's call runs, or NULL */
    int owner;                    /* 1 while a live thread owns the slot */
} __attribute__((aligned(64)));

static fohook_connect_fn fohook_real_connect;
static char fohook_store_dir[FOHOOK_PATH_MAX];
static struct fohook_task fohook_task;
static uint32_t fohook_pid;
static struct fohook_store_header *fohook_header;
static long long fohook_header_retry_at;
static struct fohook_policy *fohook_current;
static uint64_t fohook_loaded_gen;
static struct fohook_policy *fohook_retired;
static pthread_mutex_t fohook_reload_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fohook_slot fohook_slots[FOHOOK_SLOTS];
static pthread_key_t fohook_slot_key;
static __thread int fohook_my_slot __attribute__((tls_model("initial-exec"))) = -1;
static __thread int fohook_reloading __attribute__((tls_model("initial-exec")));

static struct fohook_store_header *fohook_map_store(void);

static void fohook_release_slot(void *value)
{
    int i = (int)(intptr_t)value - 1;
    if (i >= 0 && i < FOHOOK_SLOTS)
        __atomic_store_n(&fohook_slots[i].owner, 0, __ATOMIC_RELEASE);
}

static struct fohook_slot *fohook_slot(void)
{
    if (fohook_my_slot >= 0)
        return &fohook_slots[fohook_my_slot];
    for (int i = 0; i < FOHOOK_SLOTS; i++) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&fohook_slots[i].owner, &expected, 1, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            fohook_my_slot = i;
            pthread_setspecific(fohook_slot_key, (void *)(intptr_t)(i + 1));
            return &fohook_slots[i];
        }
    }
    static int told;
    if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
        fohook_debug("more than %d threads call connect(): the others' calls pass unchanged",
                     FOHOOK_SLOTS);
    return NULL;
}

/* The child has one thread: the others' slots are free. Process-local maps are the state of
 * one process: a child whose policy has some loads its generation afresh on its next call. */
static void fohook_after_fork(void)
{
    fohook_pid = (uint32_t)getpid();
    pthread_mutex_init(&fohook_reload_lock, NULL);
    for (int i = 0; i < FOHOOK_SLOTS; i++)
        if (i != fohook_my_slot) {
            fohook_slots[i].hazard = NULL;
            fohook_slots[i].owner = 0;
        }
    if (fohook_current != NULL && fohook_current->l.nlocal > 0)
        fohook_loaded_gen = FOHOOK_GEN_NONE;
}

int fohook_runtime_init(void)
{
    fohook_real_connect = (fohook_connect_fn)dlsym(RTLD_NEXT, "connect");
    if (fohook_real_connect == NULL || pthread_key_create(&fohook_slot_key, fohook_release_slot))
        return -1;
    const char *dir = getenv("FREEOFFLOAD_STORE");
    if (dir == NULL || dir[0] == '\0')
        dir = "/run/freeoffload";
    if (strlen(dir) >= sizeof fohook_store_dir - 64) {
        fohook_debug("FREEOFFLOAD_STORE is too long: no policy will run");
        dir = "";
    }
    strcpy(fohook_store_dir, dir);
    fohook_task_from_env(&fohook_task);
    fohook_pid = (uint32_t)getpid();
    pthread_atfork(NULL, NULL, fohook_after_fork);
    fohook_map_store(); /* usually there already: `freeoffload run` creates it */
    return 0;
}

static void fohook_free_unused(void)
{
    struct fohook_policy **link = &fohook_retired;
    while (*link != NULL) {
        struct fohook_policy *p = *link;
        int used = 0;
        for (int i = 0; i < FOHOOK_SLOTS && !used; i++)
            used = __atomic_load_n(&fohook_slots[i].hazard, __ATOMIC_SEQ_CST) == p;
        if (used) {
            link = &p->next;
            continue;
        }
        *link = p->next;
        fohook_store_close_gen(&p->l);
        free(p);
    }
}

/* Load generation *gen; when writers publish newer ones meanwhile (and prune the one being
 * read), follow them. NULL when the newest generation holds no policy or cannot be loaded:
 * *settled is 1 when that is the store's state (the next call need not try again), 0 when
 * the load gave up (out of memory, writers kept racing it) and the next call must retry. */
static struct fohook_policy *fohook_load(uint64_t *gen, int *settled)
{
    fohook_err err = {0, ""};
    *settled = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        struct fohook_policy *p = calloc(1, sizeof *p);
        if (p == NULL) {
            fohook_debug("store generation %llu: out of memory; this connect() passes "
                         "unchanged, the next one tries again", (unsigned long long)*gen);
            return NULL;
        }
        p->gen = *gen;
        int rc = fohook_store_open_gen(fohook_store_dir, *gen, 0, &p->l, &err);
        if (rc == FOHOOK_OK) {
            *settled = 1;
            p->sock_kind = (fohook_ctx_reads(p->l.elf, p->l.elf_len, p->l.section) &
                            FOHOOK_CTX_SOCK_BYTES) != 0;
            return p;
        }
        free(p);
        uint64_t now = __atomic_load_n(&fohook_header->generation, __ATOMIC_ACQUIRE);
        if (now == *gen) { /* not a race with a writer: this generation is bad or empty */
            char dir[FOHOOK_PATH_MAX];
            /* "no policy" is a generation without its directory; a directory missing a
             * file is a broken store */
            if (rc != FOHOOK_E_NO_POLICY ||
                (fohook_store_path(dir, sizeof dir, fohook_store_dir, *gen, "", NULL) ==
                     FOHOOK_OK && access(dir, F_OK) == 0))
                fohook_debug("store generation %llu: %s; connect() calls pass unchanged",
                             (unsigned long long)*gen, fohook_error(&err));
            *settled = 1;
            return NULL;
        }
        *gen = now;
    }
    fohook_debug("store generation %llu: %s, and writers kept publishing newer ones while it "
                 "loaded; this connect() passes unchanged, the next one tries again",
                 (unsigned long long)*gen, fohook_error(&err));
    return NULL;
}

static void fohook_reload(struct fohook_store_header *h)
{
    if (fohook_reloading) {
        fohook_debug("connect() from a signal handler while its thread loads a new policy: "
                     "it runs the policy loaded before (none: passes unchanged)");
        return;
    }
    /* Another thread may be loading this generation: wait for it (local files, a fraction
     * of a millisecond), so that no call that starts after a generation was published runs
     * the policy it replaced. */
    pthread_mutex_lock(&fohook_reload_lock);
    fohook_reloading = 1;
    /* the generation now, not the one seen before waiting: a thread that waited while
     * another loaded a newer one must not load back the older one */
    uint64_t gen = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&fohook_loaded_gen, __ATOMIC_ACQUIRE) != gen) {
        int settled;
        struct fohook_policy *p = fohook_load(&gen, &settled);
        struct fohook_policy *old = __atomic_exchange_n(&fohook_current, p, __ATOMIC_SEQ_CST);
        if (settled) /* else the next call loads again */
            __atomic_store_n(&fohook_loaded_gen, gen, __ATOMIC_RELEASE);
        if (old != NULL) {
            old->next = fohook_retired;
            fohook_retired = old;
        }
        fohook_free_unused();
    }
    fohook_reloading = 0;
    pthread_mutex_unlock(&fohook_reload_lock);
}

/* Map DIR/generation; after a failure, try again at most every 100 ms. Threads arriving
 * together wait for one attempt instead of skipping it. */
static struct fohook_store_header *fohook_map_store(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    long long now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (fohook_store_dir[0] == '\0' ||
        now < __atomic_load_n(&fohook_header_retry_at, __ATOMIC_ACQUIRE))
        return NULL;
    if (fohook_reloading) {
        fohook_debug("connect() from a signal handler while its thread maps the policy "
                     "store: passes unchanged");
        return NULL;
    }
    pthread_mutex_lock(&fohook_reload_lock);
    struct fohook_store_header *h = __atomic_load_n(&fohook_header, __ATOMIC_ACQUIRE);
    if (h == NULL) {
        fohook_err err = {0, ""};
        if (fohook_store_map_header(fohook_store_dir, 0, &h, &err) == FOHOOK_OK) {
            __atomic_store_n(&fohook_header, h, __ATOMIC_RELEASE);
        } else {
            if (fohook_header_retry_at == 0) /* the first failure only */
                fohook_debug("no policy store: %s; connect() calls pass unchanged",
                             fohook_error(&err));
            __atomic_store_n(&fohook_header_retry_at, now + FOHOOK_RETRY_NS, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&fohook_reload_lock);
    return h;
}

static void fohook_check_store(void)
{
    struct fohook_store_header *h = __atomic_load_n(&fohook_header, __ATOMIC_ACQUIRE);
    if (h == NULL && (h = fohook_map_store()) == NULL)
        return;
    uint64_t gen = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    if (gen != __atomic_load_n(&fohook_loaded_gen, __ATOMIC_ACQUIRE))
        fohook_reload(h);
}

/* Run `p` on the call; 1 and the new address in `out` when it rewrote the destination. */
static int fohook_run(struct fohook_policy *p, int fd, const struct sockaddr *addr,
                      socklen_t len, struct sockaddr_storage *out, socklen_t *outlen)
{
    struct fo_connect_ctx ctx;
    uint64_t r0 = 0;
    fovm_error verr;
    if (fohook_ctx_build(&ctx, &fohook_task, fohook_pid, p->sock_kind ? fd : -1, addr,
                         len) != 0) {
        fohook_debug("connect() with a %u-byte address of family %d: passes unchanged",
                     (unsigned)len, (int)addr->sa_family);
        return 0;
    }
    if (fovm_exec(p->l.vm, &ctx, sizeof ctx, &r0, &verr) != FOVM_OK) {
        fohook_debug("policy of generation %llu faulted: %s; connect() passes unchanged",
                     (unsigned long long)p->gen, verr.msg);
        return 0;
    }
    if (r0 == FO_PASS)
        return 0;
    if (r0 != FO_REWRITE) {
        fohook_debug("policy returned %llu (expected 0 or 1); connect() passes unchanged",
                     (unsigned long long)r0);
        return 0;
    }
    if (fohook_ctx_apply(&ctx, addr, out, outlen) != 0) {
        fohook_debug("policy rewrote to a destination this socket cannot use; connect() "
                     "passes unchanged");
        return 0;
    }
    return 1;
}

int fohook_runtime_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int saved_errno = errno;
    struct sockaddr_storage out;
    socklen_t outlen = 0;
    int rewritten = 0;
    /* the address is read only when a policy is installed: without one, even a bad
     * pointer reaches the kernel (EFAULT) exactly as the program passed it */
    fohook_check_store();
    struct fohook_slot *slot;
    if (__atomic_load_n(&fohook_current, __ATOMIC_ACQUIRE) != NULL && addr != NULL &&
        len >= sizeof(sa_family_t) && (addr->sa_family == AF_INET ||
                                      addr->sa_family == AF_INET6)) {
        slot = fohook_slot(); /* NULL: more threads than slots (said once) */
        if (slot != NULL && slot->hazard != NULL) /* nested: a signal handler's call */
            fohook_debug("connect() from a signal handler interrupting a hooked connect() "
                         "on its thread: passes unchanged");
        else if (slot != NULL) {
            struct fohook_policy *p;
            do {
                p = __atomic_load_n(&fohook_current, __ATOMIC_SEQ_CST);
                __atomic_store_n(&slot->hazard, p, __ATOMIC_SEQ_CST);
            } while (p != __atomic_load_n(&fohook_current, __ATOMIC_SEQ_CST));
            if (p != NULL)
                rewritten = fohook_run(p, fd, addr, len, &out, &outlen);
            __atomic_store_n(&slot->hazard, NULL, __ATOMIC_RELEASE);
        }
    }
    errno = saved_errno;
    if (rewritten)
        return fohook_real_connect(fd, (const struct sockaddr *)&out, outlen);
    return fohook_real_connect(fd, addr, len);
}
