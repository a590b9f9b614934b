/* A test client for the connect() hook, built with each linker setting a GOT hook must
 * survive. Usage: fotest_client HOST PORT [COUNT [THREADS [LIBRARY]]]
 * Each of THREADS threads makes COUNT connections (COUNT 0: until stdin reaches end of file)
 * and prints each server banner on a line ("FAILED" for a failed connection);
 * with LIBRARY, the connections are made by fotest_connect() in LIBRARY, loaded with dlopen()
 * after start-up (a bare name is looked up in the client's RUNPATH). Exit 1 on any failure. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

int fotest_connect(const char *host, int port, char *banner, size_t size);

typedef int (*connect_fn)(const char *, int, char *, size_t);

static const char *host;
static int port, count;
static connect_fn do_connect = fotest_connect;
static volatile int stop;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    char banner[128];
    long failures = 0;
    (void)arg;
    for (int i = 0; count == 0 ? !stop : i < count; i++) {
        int rc = do_connect(host, port, banner, sizeof banner);
        pthread_mutex_lock(&out_lock);
        if (rc == 0)
            printf("%s\n", banner);
        else
            printf("FAILED\n");
        pthread_mutex_unlock(&out_lock);
        failures += rc != 0;
    }
    return (void *)failures;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    host = argv[1];
    port = atoi(argv[2]);
    count = argc > 3 ? atoi(argv[3]) : 1;
    int threads = argc > 4 ? atoi(argv[4]) : 1;
    if (argc > 5) {
        void *lib = dlopen(argv[5], RTLD_NOW);
        if (lib == NULL) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        do_connect = (connect_fn)dlsym(lib, "fotest_connect");
    }
    pthread_t tids[256];
    long failed = 0;
    if (threads < 1 || threads > 256)
        return 2;
    for (int t = 0; t < threads; t++)
        pthread_create(&tids[t], NULL, worker, NULL);
    if (count == 0) {
        while (getchar() != EOF)
            ;
        stop = 1;
    }
    for (int t = 0; t < threads; t++) {
        void *r;
        pthread_join(tids[t], &r);
        failed += (long)r;
    }
    fflush(stdout);
    return failed ? 1 : 0;
}
