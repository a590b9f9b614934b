/* fo-relay: the testbed's delay stage, for kernels without netem.
 *
 * Each port is a pair of interfaces: A faces a node (the peer of the node's eth0), B faces the
 * bridge. Frames the node sends (read on A) wait in a FIFO chosen by their destination MAC and
 * leave on B after that destination's delay; frames from the bridge (read on B) go to A at once.
 * So a frame from node i to node j is delayed once, by d[i][j], and a round trip i -> j -> i
 * takes d[i][j] + d[j][i]. Broadcast and unknown destinations are not delayed.
 *
 *   fo-relay -p IFA,IFB,MAC [-p ...] [-d I,J,USEC ...] [-l BYTES]
 *
 * Packet sockets use PACKET_VNET_HDR so GSO super-frames and partial checksums pass through
 * unchanged, and PACKET_IGNORE_OUTGOING so a port never reads back what it wrote.
 * SIGTERM or SIGINT ends the loop; counters go to stderr on exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define MAX_PORTS 32
#define FRAME_MAX (65536 + sizeof(struct virtio_net_hdr))
#define BATCH 64

struct frame {
    struct frame *next;
    uint64_t release_ns;
    size_t len;
    unsigned char data[];
};

struct fifo {
    struct frame *head, *tail;
};

struct port {
    int fd_a, fd_b;
    unsigned char mac[6];
    size_t queued; /* bytes waiting in this port's FIFOs */
    struct fifo q[MAX_PORTS + 1]; /* one per destination port; the last for the rest */
    uint64_t fwd, back, dropped;
};

static struct port ports[MAX_PORTS];
static int nports;
static uint64_t delay_ns[MAX_PORTS][MAX_PORTS];
static size_t limit_bytes = 8u << 20;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_port(const char *ifname) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -1;
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_ll sll = {0};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)if_nametoindex(ifname);
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int parse_mac(const char *s, unsigned char mac[6]) {
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
    for (int i = 0; i < 6; i++) mac[i] = (unsigned char)v[i];
    return 0;
}

static int add_port(char *spec) {
    char *ifa = strtok(spec, ","), *ifb = strtok(NULL, ","), *mac = strtok(NULL, ",");
    if (!ifa || !ifb || !mac || nports == MAX_PORTS) return -1;
    struct port *p = &ports[nports];
    if (parse_mac(mac, p->mac) < 0) return -1;
    p->fd_a = open_port(ifa);
    p->fd_b = open_port(ifb);
    if (p->fd_a < 0 || p->fd_b < 0) {
        fprintf(stderr, "fo-relay: cannot open %s/%s: %s\n", ifa, ifb, strerror(errno));
        return -1;
    }
    nports++;
    return 0;
}

static int destination(const unsigned char *eth) {
    for (int j = 0; j < nports; j++)
        if (memcmp(eth, ports[j].mac, 6) == 0) return j;
    return MAX_PORTS;
}

/* Reads up to BATCH frames the node sent and queues them by destination. */
static void read_forward(struct port *p, int i, unsigned char *buf) {
    for (int n = 0; n < BATCH; n++) {
        ssize_t len = recv(p->fd_a, buf, FRAME_MAX, 0);
        if (len < 0) return;
        size_t hdr = sizeof(struct virtio_net_hdr);
        if ((size_t)len < hdr + ETH_HLEN) continue;
        if (p->queued + (size_t)len > limit_bytes) { p->dropped++; continue; }
        struct frame *f = malloc(sizeof *f + (size_t)len);
        if (!f) { p->dropped++; continue; }
        int j = destination(buf + hdr);
        f->next = NULL;
        f->len = (size_t)len;
        f->release_ns = now_ns() + (j < MAX_PORTS ? delay_ns[i][j] : 0);
        memcpy(f->data, buf, (size_t)len);
        struct fifo *q = &p->q[j];
        if (q->tail) q->tail->next = f; else q->head = f;
        q->tail = f;
        p->queued += f->len;
    }
}

/* Passes up to BATCH frames from the bridge to the node, undelayed. */
static void read_back(struct port *p, unsigned char *buf) {
    for (int n = 0; n < BATCH; n++) {
        ssize_t len = recv(p->fd_b, buf, FRAME_MAX, 0);
        if (len < 0) return;
        if (send(p->fd_a, buf, (size_t)len, MSG_DONTWAIT) < 0) p->dropped++; else p->back++;
    }
}

/* Sends every frame whose time has come; returns the earliest time still waiting (or 0). */
static uint64_t release_due(uint64_t now) {
    uint64_t next = 0;
    for (int i = 0; i < nports; i++) {
        struct port *p = &ports[i];
        for (int j = 0; j <= MAX_PORTS; j++) {
            struct fifo *q = &p->q[j];
            while (q->head && q->head->release_ns <= now) {
                struct frame *f = q->head;
                q->head = f->next;
                if (!q->head) q->tail = NULL;
                if (send(p->fd_b, f->data, f->len, MSG_DONTWAIT) < 0) p->dropped++; else p->fwd++;
                p->queued -= f->len;
                free(f);
            }
            if (q->head && (next == 0 || q->head->release_ns < next)) next = q->head->release_ns;
        }
    }
    return next;
}

static int parse_args(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "p:d:l:")) != -1) {
        if (opt == 'p') {
            if (add_port(optarg) < 0) return -1;
        } else if (opt == 'd') {
            int i, j;
            unsigned long long us;
            if (sscanf(optarg, "%d,%d,%llu", &i, &j, &us) != 3 || i < 0 || j < 0 ||
                i >= MAX_PORTS || j >= MAX_PORTS)
                return -1;
            delay_ns[i][j] = (uint64_t)us * 1000u;
        } else if (opt == 'l') {
            limit_bytes = (size_t)strtoull(optarg, NULL, 10);
        } else {
            return -1;
        }
    }
    return nports > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv) < 0) {
        fprintf(stderr, "usage: fo-relay -p IFA,IFB,MAC [-p ...] [-d I,J,USEC ...] [-l BYTES]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    static unsigned char buf[FRAME_MAX];
    struct pollfd pfd[2 * MAX_PORTS];
    for (int i = 0; i < nports; i++) {
        pfd[2 * i] = (struct pollfd){.fd = ports[i].fd_a, .events = POLLIN};
        pfd[2 * i + 1] = (struct pollfd){.fd = ports[i].fd_b, .events = POLLIN};
    }
    fprintf(stderr, "fo-relay: %d ports ready\n", nports);
    while (!stopping) {
        uint64_t now = now_ns(), next = release_due(now);
        struct timespec ts, *tp = NULL;
        if (next) {
            uint64_t wait = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000000u);
            ts.tv_nsec = (long)(wait % 1000000000u);
            tp = &ts;
        }
        if (ppoll(pfd, (nfds_t)(2 * nports), tp, NULL) < 0 && errno != EINTR) break;
        for (int i = 0; i < nports; i++) {
            if (pfd[2 * i].revents & POLLIN) read_forward(&ports[i], i, buf);
            if (pfd[2 * i + 1].revents & POLLIN) read_back(&ports[i], buf);
        }
    }
    for (int i = 0; i < nports; i++)
        fprintf(stderr, "fo-relay: port %d forwarded %llu back %llu dropped %llu\n", i,
                (unsigned long long)ports[i].fwd, (unsigned long long)ports[i].back,
                (unsigned long long)ports[i].dropped);
    return 0;
}
