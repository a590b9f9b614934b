/* A burst client: connects COUNT times over TCP to HOST PORT (one process, one after another)
 * and prints the name each server sends, one per line. Built dynamically (hooked by
 * LD_PRELOAD) and with -static (only the kernel path can redirect it). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    char buf[128];
    int count, n;

    if (argc != 4)
        return 2;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
        return 2;
    count = atoi(argv[3]);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("connect");
            return 1;
        }
        n = (int)read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        printf("%s\n", buf);
        close(fd);
    }
    return 0;
}
