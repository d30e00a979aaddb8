"""The lock module with real processes, threads and files: exclusion holds even when holders unlink."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ssocred.adapters import locks
from ssocred.errors import EXIT_SERVICE, ConfigError, ServiceError

REPO = Path(__file__).resolve().parents[1]

_COUNTER = """
import sys, time
from ssocred.adapters import locks
lock_path, counter, rounds, remover, check = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
opened = locks._open
def slow_open(path):
    fd = opened(path)
    time.sleep(0.001)  # widen the window between open and flock, in which the holder may unlink
    return fd
locks._open = slow_open
if check == "unchecked":  # the control: flock alone, without the check that the path still names the file
    locks._same_file = lambda fd, current: True
lock = locks.Lock(lock_path, "the counter")
for _ in range(rounds):
    with locks.held(lock, "the counter", timeout=60):
        with open(counter) as fh:
            value = int(fh.read() or 0)
        time.sleep(0.0005)  # widen the window in which a second holder would lose an increment
        with open(counter, "w") as fh:
            fh.write(str(value + 1))
        if remover:
            locks.remove_held(lock)  # the very last step of the hold
"""


def _count_under_removal(tmp_path: Path, check: str, workers: int = 8, rounds: int = 150) -> int:
    lock_path, counter = tmp_path / "counter.lock", tmp_path / "counter"
    counter.write_text("0")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNTER, str(lock_path), str(counter), str(rounds), "1" if i == 0 else "0", check],
            env=env, stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    errors = [p.communicate(timeout=240)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, errors
    return int(counter.read_text())


@pytest.mark.slow
def test_processes_never_lose_an_increment_while_one_unlinks_the_lock_file(tmp_path: Path) -> None:
    assert _count_under_removal(tmp_path, "checked") == 8 * 150


@pytest.mark.slow
def test_the_counter_test_catches_a_lock_without_the_inode_check(tmp_path: Path) -> None:
    # The same run with flock alone loses increments: the test above can see the failure it guards against.
    assert _count_under_removal(tmp_path, "unchecked") < 8 * 150


def test_threads_of_one_process_exclude_each_other_through_one_lock_object(tmp_path: Path) -> None:
    shared = locks.Lock(tmp_path / "t.lock")
    state = {"inside": 0, "max": 0, "count": 0}
    unlinks = 0

    def work(remover: bool) -> None:
        nonlocal unlinks
        for _ in range(200):
            with locks.held(shared, "threads", timeout=30):
                state["inside"] += 1
                state["max"] = max(state["max"], state["inside"])
                value = state["count"]
                time.sleep(0.0001)
                state["count"] = value + 1
                state["inside"] -= 1
                if remover and locks.remove_held(shared):
                    unlinks += 1

    threads = [threading.Thread(target=work, args=(i == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert state == {"inside": 0, "max": 1, "count": 1200}
    assert unlinks == 200


def test_a_timeout_is_the_one_line_service_error(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from ssocred.adapters import locks; l = locks.Lock(sys.argv[1]); l.acquire();"
         " print('held', flush=True); time.sleep(30)", str(tmp_path / "r.lock")],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        lock = locks.Lock(tmp_path / "r.lock")
        started = time.monotonic()
        with pytest.raises(locks.LockTimeout) as info, locks.held(lock, "role 'Admin' in 111122223333", timeout=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 3
        assert isinstance(info.value, ServiceError) and info.value.exit_code == EXIT_SERVICE
        assert info.value.line() == (  # the holder named, so that a hung one can be found
            f"another ssocred process (pid {holder.pid}) has held the lock of role 'Admin' in 111122223333 "
            f"for 0.3 s; try again; if it persists, look at process {holder.pid} (ps -p {holder.pid})"
        )
        assert not locks.try_acquire(lock)
        assert not locks.discard(lock) and (tmp_path / "r.lock").exists()
    finally:
        holder.kill()
        holder.wait()
    assert locks.try_acquire(lock)  # the dead holder's flock went with it
    lock.release()


def test_callers_written_for_filelock_still_catch_its_timeout(tmp_path: Path) -> None:
    import filelock

    first, second = locks.Lock(tmp_path / "s.lock"), locks.Lock(tmp_path / "s.lock", "the login of 'corp'")
    with first:
        with pytest.raises(filelock.Timeout) as info:
            second.acquire(timeout=0)  # what login.py waits on
        assert isinstance(info.value, locks.LockTimeout) and "the login of 'corp'" in info.value.line()


def test_a_symlink_at_the_lock_path_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me")
    target.chmod(0o644)
    link = tmp_path / "planted.lock"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="is a symbolic link") as info:
        locks.Lock(link).acquire(timeout=1)
    assert "\n" not in info.value.line()
    assert target.read_text() == "keep me" and stat.S_IMODE(target.stat().st_mode) == 0o644
    dangling = tmp_path / "dangling.lock"
    dangling.symlink_to(tmp_path / "made-through-the-link")
    with pytest.raises(ConfigError):
        locks.Lock(dangling).acquire(timeout=1)
    assert not (tmp_path / "made-through-the-link").exists()
    assert not locks.discard(locks.Lock(link)) and link.is_symlink()


def test_lock_files_are_private_and_not_inherited(tmp_path: Path) -> None:
    lock = locks.Lock(tmp_path / "p.lock")
    old = os.umask(0)
    try:
        with lock:
            assert stat.S_IMODE((tmp_path / "p.lock").stat().st_mode) == 0o600
            fd = lock._held_fd()
            assert fd is not None and not os.get_inheritable(fd)
            assert lock.is_locked
            with lock:  # reentrant in its thread, as filelock's locks are
                assert lock.is_locked
            assert lock.is_locked
    finally:
        os.umask(old)
    assert not lock.is_locked


def test_after_removal_the_next_holder_uses_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder, waiter = locks.Lock(path), locks.Lock(path)
    holder.acquire()
    got = threading.Event()

    def wait() -> None:
        with locks.held(waiter, "x", timeout=10):
            got.set()
            time.sleep(0.2)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.1)
    assert not got.is_set()
    assert locks.remove_held(holder)
    holder.release()
    assert got.wait(5)
    assert path.exists()  # made anew by the waiter (the inode number itself may be reused)
    assert not locks.try_acquire(locks.Lock(path))  # the waiter holds the file the path names now
    thread.join()
    assert not locks.remove_held(holder)  # only a holder may remove it
    assert locks.discard(locks.Lock(path)) and not path.exists()


def test_acquire_returns_a_context_that_releases_once(tmp_path: Path) -> None:
    lock = locks.Lock(tmp_path / "c.lock")
    with lock.acquire(timeout=1):
        assert lock.is_locked
    assert not lock.is_locked
    assert locks.try_acquire(lock)
    lock.release()
