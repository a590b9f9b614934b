/* Network, transport, per peer address: smoothed RTT (tcp:tcp_probe), connect latency and
 * count (sock:inet_sock_set_state, SYN_SENT to ESTABLISHED), bytes sent and received
 * (sock:sock_send_length / sock_recv_length where the kernel has them) and retransmits
 * (tcp:tcp_retransmit_skb). Addresses are kept as IPv6, IPv4 mapped as ::ffff:a.b.c.d. Only
 * tracepoint arguments are read: a socket's address is only a key, never dereferenced. */
#include "fo_probe.h"

#define FO_AF_INET 2
#define FO_AF_INET6 10
#define FO_TCP 6

struct tcp_peer {
    u8 addr[16];
};

struct tcp_flow {
    u8 addr[16];
    u32 dir;      /* 0 sent, 1 received */
};

BPF_F_TABLE("lru_hash", u64, struct tcp_peer, tcp_socks, 16384, BPF_F_NO_COMMON_LRU);
BPF_F_TABLE("lru_hash", u64, u64, tcp_connecting, 4096, BPF_F_NO_COMMON_LRU);
BPF_F_TABLE("lru_hash", struct tcp_flow, u64, tcp_peer_bytes_total, 4096, BPF_F_NO_COMMON_LRU);
BPF_F_TABLE("lru_hash", struct tcp_peer, struct sum_count, tcp_peer_rtt_seconds, 4096, BPF_F_NO_COMMON_LRU);
BPF_F_TABLE("lru_hash", struct tcp_peer, struct sum_count, tcp_peer_connect_seconds, 4096, BPF_F_NO_COMMON_LRU);
BPF_F_TABLE("lru_hash", struct tcp_peer, u64, tcp_peer_retransmits_total, 4096, BPF_F_NO_COMMON_LRU);

static __always_inline void add_bytes(struct tcp_flow *key, u64 amount)
{
    u64 zero = 0, *slot = tcp_peer_bytes_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline void add_retransmits(struct tcp_peer *key, u64 amount)
{
    u64 zero = 0, *slot = tcp_peer_retransmits_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline void observe_rtt(struct tcp_peer *key, u64 value)
{
    struct sum_count zero = {}, *slot = tcp_peer_rtt_seconds.lookup_or_try_init(key, &zero);
    if (slot) {
        __sync_fetch_and_add(&slot->sum, value);
        __sync_fetch_and_add(&slot->count, 1);
    }
}

static __always_inline void observe_connect(struct tcp_peer *key, u64 value)
{
    struct sum_count zero = {}, *slot = tcp_peer_connect_seconds.lookup_or_try_init(key, &zero);
    if (slot) {
        __sync_fetch_and_add(&slot->sum, value);
        __sync_fetch_and_add(&slot->count, 1);
    }
}

/* The peer of an IPv4 (4 bytes) or IPv6 (16 bytes) address argument. */
static __always_inline int peer_of(struct tcp_peer *peer, u16 family, const u8 *v4,
                                   const u8 *v6)
{
    if (family == FO_AF_INET) {
        peer->addr[10] = 0xff;
        peer->addr[11] = 0xff;
        bpf_probe_read_kernel(&peer->addr[12], 4, v4);
        return 0;
    }
    if (family == FO_AF_INET6) {
        bpf_probe_read_kernel(peer->addr, 16, v6);
        return 0;
    }
    return -1;
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    u64 sk = (u64)args->skaddr;
    struct tcp_peer peer = {};
    u64 now, *start;

    if (args->protocol != FO_TCP)
        return 0;
    if (args->newstate == 7 /* TCP_CLOSE */) {
        tcp_socks.delete(&sk);
        tcp_connecting.delete(&sk);
        return 0;
    }
    if (args->newstate == 2 /* TCP_SYN_SENT */) {
        if (fo_in_scope()) {
            now = bpf_ktime_get_ns();
            tcp_connecting.update(&sk, &now);
        }
        return 0;
    }
    if (args->newstate != 1 /* TCP_ESTABLISHED */)
        return 0;
    if (peer_of(&peer, args->family, args->daddr, args->daddr_v6) != 0)
        return 0;
    tcp_socks.update(&sk, &peer);
    start = tcp_connecting.lookup(&sk);
    if (start && args->oldstate == 2) {
        observe_connect(&peer, bpf_ktime_get_ns() - *start);
        tcp_connecting.delete(&sk);
    }
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_probe)
{
    u64 sk = (u64)args->skaddr;
    struct tcp_peer peer = {};
    /* daddr is a struct sockaddr_in (address at byte 4) or sockaddr_in6 (at byte 8). */
    if (peer_of(&peer, args->family, &args->daddr[4], &args->daddr[8]) != 0)
        return 0;
    if (!tcp_socks.lookup(&sk))
        tcp_socks.update(&sk, &peer);
    if (args->srtt)
        observe_rtt(&peer, args->srtt);
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
    struct tcp_peer peer = {};
    if (peer_of(&peer, args->family, args->daddr, args->daddr_v6) != 0)
        return 0;
    add_retransmits(&peer, 1);
    return 0;
}

static __always_inline void count_bytes(u64 sk, int ret, u32 dir)
{
    struct tcp_peer *peer;
    struct tcp_flow flow = {.dir = dir};
    if (ret <= 0 || !fo_in_scope())
        return;
    peer = tcp_socks.lookup(&sk);
    if (!peer)
        return;
    __builtin_memcpy(flow.addr, peer->addr, 16);
    add_bytes(&flow, ret);
}

#ifdef FO_HAVE_sock_sock_send_length
TRACEPOINT_PROBE(sock, sock_send_length)
{
    if (args->protocol == FO_TCP)
        count_bytes((u64)args->sk, args->ret, 0);
    return 0;
}
#endif

#ifdef FO_HAVE_sock_sock_recv_length
TRACEPOINT_PROBE(sock, sock_recv_length)
{
    if (args->protocol == FO_TCP)
        count_bytes((u64)args->sk, args->ret, 1);
    return 0;
}
#endif

/* Kernels without sock_send_length / sock_recv_length but with kprobes: the same count from
 * the return value of tcp_sendmsg / tcp_recvmsg. The socket argument is only a key. */
#if (!defined(FO_HAVE_sock_sock_send_length) && defined(FO_KPROBE_sock_sock_send_length)) || \
    (!defined(FO_HAVE_sock_sock_recv_length) && defined(FO_KPROBE_sock_sock_recv_length))
#include <uapi/linux/ptrace.h>   /* struct pt_regs: the registers, an ABI, not a kernel struct */

BPF_HASH(tcp_kprobe_sk, u64, u64, 4096);

static __always_inline int remember_sk(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid(), sk = PT_REGS_PARM1(ctx);
    tcp_kprobe_sk.update(&id, &sk);
    return 0;
}

static __always_inline int count_return(struct pt_regs *ctx, u32 dir)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 *sk = tcp_kprobe_sk.lookup(&id);
    if (sk) {
        count_bytes(*sk, PT_REGS_RC(ctx), dir);
        tcp_kprobe_sk.delete(&id);
    }
    return 0;
}
#endif

#if !defined(FO_HAVE_sock_sock_send_length) && defined(FO_KPROBE_sock_sock_send_length)
int fo_kprobe_tcp_sendmsg(struct pt_regs *ctx) { return remember_sk(ctx); }
int fo_kretprobe_tcp_sendmsg(struct pt_regs *ctx) { return count_return(ctx, 0); }
#endif

#if !defined(FO_HAVE_sock_sock_recv_length) && defined(FO_KPROBE_sock_sock_recv_length)
int fo_kprobe_tcp_recvmsg(struct pt_regs *ctx) { return remember_sk(ctx); }
int fo_kretprobe_tcp_recvmsg(struct pt_regs *ctx) { return count_return(ctx, 1); }
#endif
