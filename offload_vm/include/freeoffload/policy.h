/*
 * freeoffload policy SDK: what an offload policy (C compiled by clang -target bpf) sees.
 *
 * A policy is called for every connect() a hooked program makes, with a pointer to a
 * struct fo_connect_ctx. It may rewrite the destination fields in place and return
 * FO_REWRITE, or return FO_PASS to leave the call exactly as the program made it.
 */
#ifndef FREEOFFLOAD_POLICY_H
#define FREEOFFLOAD_POLICY_H

#ifndef __FO_TYPES_DEFINED
#define __FO_TYPES_DEFINED
typedef unsigned char fo_u8;
typedef unsigned short fo_u16;
typedef unsigned int fo_u32;
typedef unsigned long long fo_u64;
#endif

/* Return codes of a policy. */
#define FO_PASS 0    /* leave the call unchanged */
#define FO_REWRITE 1 /* connect to the destination now in the context */

/* Address families, as in Linux. */
#define FO_AF_INET 2
#define FO_AF_INET6 10

/* Task types (the atomic task that models the task) and task flags. */
#define FO_TASK_NONE 0 /* the program runs with no task file */
#define FO_TASK_CPU 1
#define FO_TASK_IO 2
#define FO_TASK_SENSITIVE 0x1 /* may only run on nodes with Security */
#define FO_TASK_URGENT 0x2    /* wants the lowest-latency capable edge */

/* Context flags. */
#define FO_CTX_V4MAPPED 0x1 /* family is FO_AF_INET6 but the address is IPv4-mapped (::ffff:a.b.c.d);
                               dst_ip4 holds the IPv4 address */

/* The context of one connect() call. 64 bytes; every field is in host byte order except the
 * addresses, which are in network byte order as on the wire. */
struct fo_connect_ctx {
    fo_u32 family;     /* FO_AF_INET or FO_AF_INET6: the destination's family (may be rewritten) */
    fo_u32 sock_type;  /* SOCK_STREAM 1, SOCK_DGRAM 2 (read only) */
    fo_u32 protocol;   /* IPPROTO_TCP 6, IPPROTO_UDP 17, 0 when the socket did not say (read only) */
    fo_u32 pid;        /* process id of the caller (read only) */
    fo_u32 dst_ip4;    /* IPv4 destination, network byte order (may be rewritten) */
    fo_u32 dst_port;   /* destination port, host byte order (may be rewritten) */
    fo_u8 dst_ip6[16]; /* IPv6 destination, network byte order (may be rewritten) */
    fo_u32 flags;      /* FO_CTX_* (read only) */
    fo_u32 task_type;  /* FO_TASK_NONE, FO_TASK_CPU or FO_TASK_IO (read only) */
    fo_u32 task_flags; /* FO_TASK_SENSITIVE | FO_TASK_URGENT (read only) */
    fo_u32 demand_cpu_milli;   /* the task's CPU demand in thousandths of a core (read only) */
    fo_u32 demand_memory_mib;  /* the task's memory demand in MiB (read only) */
    fo_u32 demand_storage_mib; /* the task's storage demand in MiB (read only) */
};

#endif /* FREEOFFLOAD_POLICY_H */
