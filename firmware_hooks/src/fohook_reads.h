/* Which context bytes a policy reads (fohook_reads.c; not installed). */
#ifndef FOHOOK_READS_H
#define FOHOOK_READS_H

#include <stddef.h>
#include <stdint.h>

#include "fohook_internal.h"

#define FOHOOK_CTX_ALL (~(uint64_t)0)
/* fo_connect_ctx.sock_type and .protocol (bytes 4 to 11): the getsockopt() call */
#define FOHOOK_CTX_SOCK_BYTES ((uint64_t)0xff << 4)

/* Bit b set when the program may read byte b of its 64-byte context; FOHOOK_CTX_ALL when
 * that cannot be told (never a bit too few). `insns` are n 8-byte eBPF slots. */
FOHOOK_HIDDEN uint64_t fohook_ctx_reads_insns(const void *insns, size_t n);
/* The same for the program section `section` of an ELF object (NULL or "": the first, as
 * fovm_load_elf picks it). */
FOHOOK_HIDDEN uint64_t fohook_ctx_reads(const void *elf, size_t len, const char *section);

#endif
