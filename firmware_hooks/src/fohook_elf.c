/*
 * The ELF backend of fohook: find an object's dynamic relocations and rewrite the GOT slots
 * (JUMP_SLOT, GLOB_DAT) of one symbol. One source file per binary format, as in plthook.
 */
#include "fohook_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FOHOOK_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define FOHOOK_R_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__i386__)
#define FOHOOK_R_JUMP_SLOT R_386_JMP_SLOT
#define FOHOOK_R_GLOB_DAT R_386_GLOB_DAT
#elif defined(__aarch64__)
#define FOHOOK_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define FOHOOK_R_GLOB_DAT R_AARCH64_GLOB_DAT
#elif defined(__arm__)
#define FOHOOK_R_JUMP_SLOT R_ARM_JUMP_SLOT
#define FOHOOK_R_GLOB_DAT R_ARM_GLOB_DAT
#else
#error "fohook: unsupported architecture (add its JUMP_SLOT and GLOB_DAT numbers)"
#endif

#if __ELF_NATIVE_CLASS == 64
#define FOHOOK_R_TYPE ELF64_R_TYPE
#define FOHOOK_R_SYM ELF64_R_SYM
#else
#define FOHOOK_R_TYPE ELF32_R_TYPE
#define FOHOOK_R_SYM ELF32_R_SYM
#endif

/* A table of relocations: RELA (with addend) or REL entries, `count` of them. */
struct fohook_reltab {
    const void *start;
    size_t count;
    size_t skip; /* leading R_*_RELATIVE entries (DT_RELACOUNT / DT_RELCOUNT): never GOT slots */
    int rela;
};

struct fohook {
    ElfW(Addr) base;
    const ElfW(Sym) *symtab;
    const char *strtab;
    size_t strsz;
    const uint32_t *gnu_hash;     /* DT_GNU_HASH, or NULL */
    const uint32_t *sysv_hash;    /* DT_HASH, or NULL */
    struct fohook_reltab tabs[2]; /* [0] PLT relocations, [1] other dynamic relocations */
    uintptr_t lo, hi;             /* the extent of the object's PT_LOAD segments */
    uintptr_t relro_lo, relro_hi; /* page-aligned part ld.so made read-only; empty when none */
};

static pthread_mutex_t fohook_write_lock = PTHREAD_MUTEX_INITIALIZER;

/* ld.so relocates most d_ptr values in place; where it does not, they are offsets. */
static const void *fohook_dyn_ptr(const fohook *h, ElfW(Addr) value)
{
    return (const void *)(value < h->base ? value + h->base : value);
}

static void fohook_scan_phdrs(fohook *h, const struct dl_phdr_info *info, const ElfW(Dyn) **dyn)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    h->lo = UINTPTR_MAX;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_DYNAMIC)
            *dyn = (const ElfW(Dyn) *)start;
        else if (ph->p_type == PT_LOAD) {
            if (start < h->lo)
                h->lo = start;
            if (start + ph->p_memsz > h->hi)
                h->hi = start + ph->p_memsz;
        } else if (ph->p_type == PT_GNU_RELRO) {
            /* as ld.so does: both ends rounded down to a page */
            h->relro_lo = start & ~(page - 1);
            h->relro_hi = (start + ph->p_memsz) & ~(page - 1);
        }
    }
}

static void fohook_read_dynamic(fohook *h, const ElfW(Dyn) *dyn, size_t sizes[4], int *pltrela)
{
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: h->symtab = fohook_dyn_ptr(h, dyn->d_un.d_ptr); break;
        case DT_STRTAB: h->strtab = fohook_dyn_ptr(h, dyn->d_un.d_ptr); break;
        case DT_STRSZ: h->strsz = dyn->d_un.d_val; break;
        case DT_JMPREL: h->tabs[0].start = fohook_dyn_ptr(h, dyn->d_un.d_ptr); break;
        case DT_PLTRELSZ: sizes[0] = dyn->d_un.d_val; break;
        case DT_PLTREL: *pltrela = dyn->d_un.d_val == DT_RELA; break;
        case DT_RELA:
            h->tabs[1].start = fohook_dyn_ptr(h, dyn->d_un.d_ptr);
            h->tabs[1].rela = 1;
            break;
        case DT_RELASZ: sizes[1] = dyn->d_un.d_val; break;
        case DT_REL:
            h->tabs[1].start = fohook_dyn_ptr(h, dyn->d_un.d_ptr);
            h->tabs[1].rela = 0;
            break;
        case DT_RELSZ: sizes[2] = dyn->d_un.d_val; break;
        case DT_RELACOUNT: sizes[3] = dyn->d_un.d_val; break;
        case DT_RELCOUNT: sizes[3] = dyn->d_un.d_val; break;
        case DT_GNU_HASH: h->gnu_hash = fohook_dyn_ptr(h, dyn->d_un.d_ptr); break;
        case DT_HASH: h->sysv_hash = fohook_dyn_ptr(h, dyn->d_un.d_ptr); break;
        default: break;
        }
    }
}

int fohook_open_info(fohook **out, const struct dl_phdr_info *info, fohook_err *err)
{
    const ElfW(Dyn) *dyn = NULL;
    size_t sizes[4] = {0, 0, 0, 0};
    int pltrela = 0;
    fohook *h = calloc(1, sizeof *h);
    if (h == NULL)
        return fohook_fail(err, FOHOOK_E_NOMEM, "out of memory");
    h->base = info->dlpi_addr;
    fohook_scan_phdrs(h, info, &dyn);
    if (dyn == NULL) {
        free(h);
        return fohook_fail(err, FOHOOK_E_FORMAT, "object '%s' has no dynamic section",
                           info->dlpi_name);
    }
    fohook_read_dynamic(h, dyn, sizes, &pltrela);
    if (h->symtab == NULL || h->strtab == NULL) {
        free(h);
        return fohook_fail(err, FOHOOK_E_FORMAT, "object '%s' has no dynamic symbol table",
                           info->dlpi_name);
    }
    h->tabs[0].rela = pltrela;
    h->tabs[0].count = sizes[0] / (pltrela ? sizeof(ElfW(Rela)) : sizeof(ElfW(Rel)));
    h->tabs[1].count = h->tabs[1].rela ? sizes[1] / sizeof(ElfW(Rela))
                                       : sizes[2] / sizeof(ElfW(Rel));
    if (h->tabs[1].start == NULL)
        h->tabs[1].count = 0;
    h->tabs[1].skip = sizes[3] < h->tabs[1].count ? sizes[3] : h->tabs[1].count;
    *out = h;
    return FOHOOK_OK;
}

static int fohook_write_slot(const fohook *h, void **slot, void *value, fohook_err *err)
{
    uintptr_t at = (uintptr_t)slot;
    if (__atomic_load_n(slot, __ATOMIC_RELAXED) == value)
        return FOHOOK_OK;
    if (at < h->relro_lo || at >= h->relro_hi) {
        __atomic_store_n(slot, value, __ATOMIC_RELEASE);
        return FOHOOK_OK;
    }
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    void *start = (void *)(at & ~(page - 1));
    if (mprotect(start, page, PROT_READ | PROT_WRITE) != 0)
        return fohook_fail(err, FOHOOK_E_PROTECT, "mprotect of the relro page at %p: %s",
                           start, strerror(errno));
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    mprotect(start, page, PROT_READ);
    return FOHOOK_OK;
}

static int fohook_inside(const fohook *h, const void *p)
{
    return (uintptr_t)p >= h->lo && (uintptr_t)p < h->hi;
}

/* The function a slot leads to: a lazy slot still points into the object's own PLT, so the
 * loader is asked; when the object is a non-PIE program whose PLT entry is the symbol's
 * canonical address, the definition after the caller of this library is taken instead. */
static void *fohook_resolve_old(const fohook *h, void *old, const char *funcname)
{
    if (!fohook_inside(h, old))
        return old;
    void *found = dlsym(RTLD_DEFAULT, funcname);
    if (found == NULL || fohook_inside(h, found))
        found = dlsym(RTLD_NEXT, funcname);
    return found != NULL && !fohook_inside(h, found) ? found : NULL;
}

/* The defined symbol `name` through the GNU hash table (the loader's own lookup), or 0. */
static size_t fohook_gnu_lookup(const fohook *h, const char *name)
{
    const uint32_t *gh = h->gnu_hash;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2];
    const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)&gh[4] + bloom_size);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t hash = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        hash = hash * 33 + *c;
    if (nbuckets == 0)
        return 0;
    for (uint32_t i = buckets[hash % nbuckets]; i >= symoffset; i++) {
        uint32_t other = chain[i - symoffset];
        size_t at = h->symtab[i].st_name;
        if ((other | 1) == (hash | 1) && at < h->strsz && strcmp(h->strtab + at, name) == 0)
            return i;
        if (other & 1)
            break;
    }
    return 0;
}

/* Whether a GNU hash table hashes any symbol (else its symoffset means nothing). */
static int fohook_gnu_hashes_any(const uint32_t *gh)
{
    const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)&gh[4] + gh[2]);
    for (uint32_t i = 0; i < gh[0]; i++)
        if (buckets[i] != 0)
            return 1;
    return 0;
}

/* The dynamic symbol indexes named `name` (at most FOHOOK_MAX_SYMS); -1 when the object has
 * no hash table to bound its symbol table (then every relocation's name is compared). With a
 * GNU hash table, imported (undefined) symbols are the unhashed ones, before symoffset: only
 * those are compared by name, so an object that does not import `name` costs almost nothing. */
static int fohook_find_syms(const fohook *h, const char *name, size_t out[FOHOOK_MAX_SYMS])
{
    size_t unhashed, n = 0;
    if (h->gnu_hash != NULL && fohook_gnu_hashes_any(h->gnu_hash))
        unhashed = h->gnu_hash[1];
    else if (h->sysv_hash != NULL)
        unhashed = h->sysv_hash[1]; /* nchain: every symbol */
    else if (h->gnu_hash != NULL && (uintptr_t)h->strtab > (uintptr_t)h->symtab)
        /* an empty GNU table (nothing exported) does not bound the symbols; .dynstr follows
         * .dynsym in what GNU ld and lld emit, and anything between has no name to match */
        unhashed = ((uintptr_t)h->strtab - (uintptr_t)h->symtab) / sizeof(ElfW(Sym));
    else
        return -1;
    for (size_t i = 1; i < unhashed && n < FOHOOK_MAX_SYMS; i++) {
        size_t at = h->symtab[i].st_name; /* the first byte decides for nearly all */
        if (at < h->strsz && h->strtab[at] == name[0] && strcmp(h->strtab + at, name) == 0)
            out[n++] = i;
    }
    size_t defined = h->gnu_hash != NULL ? fohook_gnu_lookup(h, name) : 0;
    if (defined != 0 && n < FOHOOK_MAX_SYMS)
        out[n++] = defined;
    return (int)n;
}

/* The symbol of relocation i of t when it is a JUMP_SLOT or GLOB_DAT (its offset goes to
 * *offset), else 0. */
static size_t fohook_slot_symbol(const struct fohook_reltab *t, size_t i, ElfW(Addr) *offset)
{
    ElfW(Xword) info;
    if (t->rela) {
        const ElfW(Rela) *r = (const ElfW(Rela) *)t->start + i;
        info = r->r_info;
        *offset = r->r_offset;
    } else {
        const ElfW(Rel) *r = (const ElfW(Rel) *)t->start + i;
        info = r->r_info;
        *offset = r->r_offset;
    }
    unsigned type = (unsigned)FOHOOK_R_TYPE(info);
    if (type != FOHOOK_R_JUMP_SLOT && type != FOHOOK_R_GLOB_DAT)
        return 0;
    return FOHOOK_R_SYM(info);
}

static int fohook_targets_symbol(const fohook *h, const fohook_target *t, size_t sym)
{
    for (int k = 0; k < t->nsyms; k++)
        if (t->syms[k] == sym)
            return 1;
    if (t->nsyms >= 0)
        return 0;
    size_t name = h->symtab[sym].st_name;
    return name < h->strsz && strcmp(h->strtab + name, t->name) == 0;
}

/* One pass over the object's relocations for all targets (start-up walks every object). */
int fohook_replace_targets(fohook *h, fohook_target *targets, size_t n, fohook_err *err)
{
    int rc = FOHOOK_OK, any = 0;
    for (size_t k = 0; k < n; k++) {
        targets[k].nsyms = fohook_find_syms(h, targets[k].name, targets[k].syms);
        targets[k].found = 0;
        targets[k].old = NULL;
        any |= targets[k].nsyms != 0;
    }
    if (!any)
        return FOHOOK_OK;
    pthread_mutex_lock(&fohook_write_lock);
    for (int t = 0; t < 2 && rc == FOHOOK_OK; t++) {
        for (size_t i = h->tabs[t].skip; i < h->tabs[t].count && rc == FOHOOK_OK; i++) {
            ElfW(Addr) offset;
            size_t sym = fohook_slot_symbol(&h->tabs[t], i, &offset);
            for (size_t k = 0; sym != 0 && k < n; k++) {
                fohook_target *tg = &targets[k];
                if (tg->nsyms == 0 || !fohook_targets_symbol(h, tg, sym))
                    continue;
                void **slot = (void **)(h->base + offset);
                void *old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
                if (!tg->found)
                    tg->old = old == tg->func ? NULL : fohook_resolve_old(h, old, tg->name);
                tg->found = 1;
                rc = fohook_write_slot(h, slot, tg->func, err);
                break;
            }
        }
    }
    pthread_mutex_unlock(&fohook_write_lock);
    return rc;
}

int fohook_replace(fohook *h, const char *funcname, void *newfunc, void **oldfunc,
                   fohook_err *err)
{
    if (h == NULL || funcname == NULL || newfunc == NULL)
        return fohook_fail(err, FOHOOK_E_INVAL, "fohook_replace needs a handle, a name and a "
                                                "function");
    fohook_target t = {funcname, newfunc, {0}, 0, 0, NULL};
    int rc = fohook_replace_targets(h, &t, 1, err);
    if (rc == FOHOOK_OK && !t.found)
        return fohook_fail(err, FOHOOK_E_NOT_FOUND, "no GOT slot for '%s'", funcname);
    if (rc == FOHOOK_OK && oldfunc != NULL)
        *oldfunc = t.old;
    return rc;
}

void fohook_close(fohook *h)
{
    free(h);
}
