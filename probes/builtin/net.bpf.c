/* Network, data link: bytes and packets per interface and direction, from net:net_dev_xmit
 * (sent, when the driver accepted the packet) and net:netif_receive_skb (received). The whole
 * node: packets are handled in softirq context, where no task's cgroup applies. */
#include "fo_probe.h"

struct net_key {
    char ifname[16];
    u32 dir;      /* 0 transmit, 1 receive */
};

BPF_HASH(net_dev_bytes_total, struct net_key, u64, 1024);
BPF_HASH(net_dev_packets_total, struct net_key, u64, 1024);

static __always_inline void add_bytes(struct net_key *key, u64 amount)
{
    u64 zero = 0, *slot = net_dev_bytes_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline void add_packets(struct net_key *key, u64 amount)
{
    u64 zero = 0, *slot = net_dev_packets_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

TRACEPOINT_PROBE(net, net_dev_xmit)
{
    struct net_key key = {.dir = 0};
    if (args->rc != 0)
        return 0;
    TP_DATA_LOC_READ_STR(key.ifname, name, sizeof(key.ifname));
    add_bytes(&key, args->len);
    add_packets(&key, 1);
    return 0;
}

TRACEPOINT_PROBE(net, netif_receive_skb)
{
    struct net_key key = {.dir = 1};
    TP_DATA_LOC_READ_STR(key.ifname, name, sizeof(key.ifname));
    add_bytes(&key, args->len);
    add_packets(&key, 1);
    return 0;
}
