"""The first connect() calls of a fresh process, made by threads released together, race the
policy's first load: every one of them must run the installed policy (a thread that finds
another loading it waits), never pass unchanged in silence."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from freeoffload.firmware_hooks import PolicyStore
from hooktools import BannerServer, freeoffload_run, hook_lib, servers, store, test_policy

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below

# Threads started first thing in main(), each with its socket ready, all released by one
# barrier into connect(): the process's first calls, at the same moment. Prints the port of
# each banner ("port N"), or "FAILED".
RACE_CLIENT = r"""
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in dst;
static pthread_barrier_t start;
static char banners[64][64];

static void *worker(void *arg)
{
    char *banner = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_barrier_wait(&start);
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
        snprintf(banner, 64, "FAILED");
    } else {
        ssize_t n = read(fd, banner, 63);
        banner[n > 0 ? n - 1 : 0] = '\0'; /* drop the newline */
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 3 ? atoi(argv[3]) : 0;
    if (n < 1 || n > 64)
        return 2;
    dst.sin_family = AF_INET;
    dst.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
        return 2;
    pthread_t tids[64];
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        pthread_create(&tids[i], NULL, worker, banners[i]);
    for (int i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    for (int i = 0; i < n; i++)
        printf("%s\n", banners[i]);
    return 0;
}
"""

RUNS = 40
THREADS = 8


def _race_client(tmp_path: Path) -> Path:
    source = tmp_path / "race_client.c"
    source.write_text(RACE_CLIENT)
    client = tmp_path / "race_client"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(client), str(source),
                    "-lpthread"], check=True)
    return client


def test_threads_released_at_start_all_run_the_policy(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # Before the fix, threads arriving while the first one loaded the policy passed their call
    # unchanged (4 of 6 in the testbed, about one fresh process in three here) and said nothing.
    a, b = servers(), servers()
    store.install("to_port", test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port), 1)
    client = _race_client(tmp_path)
    missed: list[str] = []
    for run in range(RUNS):
        done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), str(THREADS)],
                               debug=True)
        assert done.returncode == 0, done.stderr
        seen = Counter(done.stdout.split("\n")[:-1])
        if seen != Counter({f"port {b.port}": THREADS}):
            missed.append(f"run {run}: {dict(seen)}; debug: {done.stderr.strip()!r}")
        else:  # nothing failed, so the hook had nothing to say
            assert done.stderr == "", done.stderr
    assert not missed, f"{len(missed)} of {RUNS} fresh processes (original port {a.port}):\n" \
        + "\n".join(missed)
    assert a.accepted == 0


def test_generation_missing_a_file_is_one_debug_line(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # A published generation whose directory lost its meta file is a broken store, not "no
    # policy": the calls pass unchanged and the hook says why (it used to say nothing).
    a, b = servers(), servers()
    store.install("to_port", test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port), 1)
    installed = store.current()
    assert installed is not None
    (installed.path / "meta").unlink()
    client = _race_client(tmp_path)
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "4"], debug=True)
    assert done.returncode == 0 and done.stdout == f"port {a.port}\n" * 4
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"generation {installed.generation}" in lines[0], done.stderr
    assert "meta" in lines[0] and "pass unchanged" in lines[0]


def test_removed_policy_is_quiet(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # "no policy" (a generation without its directory) is not a problem: nothing is printed
    a, b = servers(), servers()
    store.install("to_port", test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port), 1)
    store.remove()
    client = _race_client(tmp_path)
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "4"], debug=True)
    assert done.returncode == 0 and done.stdout == f"port {a.port}\n" * 4
    assert done.stderr == ""
