/* A test client: connects over TCP to HOST PORT, reads one line the server sends, prints it
 * with what getpeername() says. Built dynamically (hooked by LD_PRELOAD) and with -static
 * (only the kernel path can redirect it). A "-6" first argument uses an IPv6 socket, "-u"
 * a connected UDP socket (it sends one datagram and prints the reply). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_storage ss, peer;
    socklen_t len, plen = sizeof peer;
    char buf[128], host[INET6_ADDRSTRLEN];
    int udp = argc > 1 && strcmp(argv[1], "-u") == 0;
    int v6, fd, n;

    if (udp) {
        argv++;
        argc--;
    }
    v6 = argc > 1 && strcmp(argv[1], "-6") == 0;

    if (argc < 3 + v6) {
        fprintf(stderr, "usage: client [-u] [-6] HOST PORT\n");
        return 2;
    }
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)atoi(argv[3]));
        if (inet_pton(AF_INET6, argv[2], &a->sin6_addr) != 1)
            return 2;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)atoi(argv[2]));
        if (inet_pton(AF_INET, argv[1], &a->sin_addr) != 1)
            return 2;
        len = sizeof *a;
    }
    fd = socket(ss.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0) {
        perror("connect");
        return 1;
    }
    if (udp && send(fd, "hi", 2, 0) != 2) {
        perror("send");
        return 1;
    }
    n = (int)read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    getpeername(fd, (struct sockaddr *)&peer, &plen);
    if (peer.ss_family == AF_INET6) {
        struct sockaddr_in6 *p = (struct sockaddr_in6 *)&peer;
        inet_ntop(AF_INET6, &p->sin6_addr, host, sizeof host);
        printf("got=%s peer=[%s]:%u\n", buf, host, ntohs(p->sin6_port));
    } else {
        struct sockaddr_in *p = (struct sockaddr_in *)&peer;
        inet_ntop(AF_INET, &p->sin_addr, host, sizeof host);
        printf("got=%s peer=%s:%u\n", buf, host, ntohs(p->sin_port));
    }
    close(fd);
    return 0;
}
