"""PolicyStore: install, current, map updates in place, keeping rows across versions, remove,
and the errors a device daemon relies on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore
from hooktools import fo_addr, hook_lib, redirect_elf, store, test_policy

from freeoffload.errors import HookError

__all__ = ["hook_lib", "redirect_elf", "store", "test_policy"]  # fixtures used below


def test_install_publishes_a_new_generation(store: PolicyStore, redirect_elf: bytes) -> None:
    assert store.current() is None and store.generation() == 0
    first = store.install("redirect", redirect_elf, 3)
    assert (first.name, first.version, first.generation) == ("redirect", 3, 1)
    info = first.map("redirects")
    assert (info.type, info.key_size, info.value_size, info.max_entries) == (1, 24, 24, 1024)
    assert store.policy_elf() == redirect_elf
    second = store.install("redirect", redirect_elf, 4)
    assert second.generation == 2 and store.current() == second


def test_map_rows_update_in_place_and_survive_a_new_version(
    store: PolicyStore, redirect_elf: bytes,
) -> None:
    store.install("redirect", redirect_elf, 1)
    key, value = fo_addr("127.0.0.1", 80), fo_addr("127.0.0.2", 8080)
    store.update_map("redirects", key, value)
    assert store.map_items("redirects") == {key: value}
    store.install("redirect", redirect_elf, 2)  # keep_maps: the table stays
    assert store.map_items("redirects") == {key: value}
    store.install("redirect", redirect_elf, 3, keep_maps=False)
    assert store.map_items("redirects") == {}
    rows = [(fo_addr("127.0.0.1", p), fo_addr("127.0.0.3", p)) for p in range(1, 51)]
    store.replace_map("redirects", rows)
    assert store.map_items("redirects") == dict(rows)
    store.replace_map("redirects", rows[:10])
    assert store.map_items("redirects") == dict(rows[:10])
    store.delete_map_key("redirects", rows[0][0])
    assert len(store.map_items("redirects")) == 9


def test_remove_means_no_policy(store: PolicyStore, redirect_elf: bytes) -> None:
    store.install("redirect", redirect_elf, 1)
    store.remove()
    assert store.current() is None
    with pytest.raises(HookError, match="no policy is installed"):
        store.update_map("redirects", fo_addr("127.0.0.1", 1), fo_addr("127.0.0.1", 2))


def test_refusals_say_what_is_wrong(store: PolicyStore, redirect_elf: bytes) -> None:
    with pytest.raises(HookError, match="policy refused"):
        store.install("junk", b"\x7fELF not really", 1)
    with pytest.raises(HookError, match="name 'a/b'"):
        store.install("a/b", redirect_elf, 1)
    with pytest.raises(HookError, match="32-bit"):
        store.install("redirect", redirect_elf, -1)
    assert store.current() is None and store.generation() == 0  # nothing half-installed
    store.install("redirect", redirect_elf, 1)
    with pytest.raises(HookError, match="no map 'nope'"):
        store.update_map("nope", b"k", b"v")
    with pytest.raises(HookError, match="24-byte keys"):
        store.update_map("redirects", b"short", fo_addr("127.0.0.1", 1))


def test_old_generations_are_pruned(store: PolicyStore, redirect_elf: bytes) -> None:
    for version in range(1, 7):
        store.install("redirect", redirect_elf, version)
    kept = sorted(p.name for p in store.directory.glob("gen-*"))
    assert kept == ["gen-4", "gen-5", "gen-6"]


def test_concurrent_writers_each_get_their_own_generation(
    store: PolicyStore, test_policy: Callable[..., bytes],
) -> None:
    elf = test_policy("to_port", FROM_PORT=1, TO_PORT=2)
    errors: list[BaseException] = []

    def install(n: int) -> None:
        try:
            for version in range(5):
                PolicyStore(store.directory).install("to_port", elf, n * 10 + version)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=install, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and store.generation() == 20


def test_store_in_an_unwritable_place_is_a_clear_error(tmp_path: Path, hook_lib: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HookError, match="cannot create"):
        PolicyStore(blocker / "store").init()
