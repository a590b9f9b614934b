/* bench/hook.py's driver: connect()+close() to a loopback listener in a loop.
 * Usage: connect_loop PORT ITERATIONS [udp] -> prints nanoseconds per connect()+close(): wall
 * clock, then the calling thread's CPU time (user + system; steadier on a shared machine).
 * The listener (a thread of this process) accepts and closes each connection. With "udp",
 * one UDP socket is connect()ed to the port ITERATIONS times instead: a real connect()
 * that costs little in the kernel, so what the hook adds stands out of the noise. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;

static void *accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c >= 0)
            close(c);
    }
    return NULL;
}

static double elapsed_ns(const struct timespec *t0, const struct timespec *t1)
{
    return (double)(t1->tv_sec - t0->tv_sec) * 1e9 + (double)(t1->tv_nsec - t0->tv_nsec);
}

static struct timespec wall0, cpu0;

static void start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &wall0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
}

static void report(long n)
{
    struct timespec wall1, cpu1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    clock_gettime(CLOCK_MONOTONIC, &wall1);
    printf("%.1f %.1f\n", elapsed_ns(&wall0, &wall1) / (double)n,
           elapsed_ns(&cpu0, &cpu1) / (double)n);
}

static int udp_loop(const struct sockaddr_in *sa, long n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    start();
    for (long i = 0; i < n; i++) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
            perror("connect");
            return 1;
        }
    }
    report(n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(listener, 4096) != 0) {
        perror("listen");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, accept_loop, NULL);
    if (argc > 3)
        return udp_loop(&sa, n);
    start();
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        /* close() resets the connection: no TIME_WAIT pile-up making the kernel's search
         * for a free local port the thing measured */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            perror("connect");
            return 1;
        }
        close(fd);
    }
    report(n);
    return 0;
}
