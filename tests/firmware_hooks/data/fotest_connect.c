/* Test client code: connect to HOST:PORT (IPv4, IPv6 or ::ffff:a.b.c.d), read the server's
 * banner. Built into the client program and, separately, into a library the client dlopen()s. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fotest_connect(const char *host, int port, char *banner, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)port);
        len = sizeof *in;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        len = sizeof *in6;
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t r = read(fd, banner + got, size - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(banner, '\n', got) != NULL)
            break;
    }
    banner[got] = '\0';
    char *nl = strchr(banner, '\n');
    if (nl != NULL)
        *nl = '\0';
    close(fd);
    return got > 0 ? 0 : -1;
}
