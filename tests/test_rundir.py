"""The runtime dir: chosen without following anyone's link, made private, never steered by another user.

"Another user" is uid 65534 (the suite runs as root, which may hand files to anyone).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred import socket_protocol
from ssocred.adapters import paths
from ssocred.errors import EXIT_CONFIG, EXIT_SERVICE, ConfigError, ServiceError
from tests.support import cli
from tests.support.cli import ACCOUNT, ROLE, run
from tests.support.emulator import RunningEmulator
from tests.test_daemon import RunningDaemon, start_daemon

PROCESS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
STRANGER = 65534
ANSWERED = rf"answered corp {ACCOUNT} {ROLE}: exit 0"

as_root = pytest.mark.skipif(os.getuid() != 0, reason="handing files to another user needs root")

Snapshot = dict[str, tuple[int, int, bytes | None]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root`` (``root`` too) as ``(mode, uid, content)``, links not followed."""
    found: Snapshot = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path).encode()
        found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, content)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def victim(tmp_path: Path) -> Path:
    """A directory of ours that others may read, with a file in it: what a planted link points at."""
    target = tmp_path / "victim"
    target.mkdir()
    target.chmod(0o755)
    (target / "notes.txt").write_text("mine\n")
    return target


def plant(at: Path, kind: str, target: Path) -> None:
    """What another user leaves at ``at``: a link to ``target``, or a directory of their own."""
    if kind == "symlink":
        at.symlink_to(target)
        os.lchown(at, STRANGER, STRANGER)
    else:
        at.mkdir()
        (at / "theirs.txt").write_text("theirs\n")
        os.chown(at / "theirs.txt", STRANGER, STRANGER)
        at.chmod(0o777)
        os.chown(at, STRANGER, STRANGER)


def private_xdg(tmp_path: Path) -> Path:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    xdg.chmod(0o700)
    return xdg


def no_run_user() -> None:
    if socket_protocol.usable_base(f"/run/user/{os.getuid()}", True):
        pytest.skip(f"/run/user/{os.getuid()} exists here and would be chosen first")


@pytest.fixture
def defaults(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ``$SSOCRED_RUNTIME_DIR``; ``$XDG_CACHE_HOME`` in the test's dir; returns the cache location."""
    monkeypatch.delenv("SSOCRED_RUNTIME_DIR")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ssocred" / "run"


@pytest.fixture
def daemons() -> Iterator[list[RunningDaemon]]:
    started: list[RunningDaemon] = []
    yield started
    for d in started:
        d.close()


def login() -> None:
    cli.login()


def assert_private_tree(run_dir: Path) -> None:
    for directory in (run_dir, run_dir / "locks"):
        st = directory.lstat()
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid(), directory
        assert mode(directory) == 0o700, directory
    assert socket_protocol.trusted(str(run_dir))


# --- choosing and making the directory, in this process -------------------------------------------


def agree() -> Path:
    """``socket_protocol.runtime_dir()`` before and after ``paths.runtime_dir()`` made it: the same directory."""
    chosen = socket_protocol.runtime_dir()
    made = paths.runtime_dir()
    assert str(made) == chosen == socket_protocol.runtime_dir()
    assert socket_protocol.trusted(chosen) and socket_protocol.trusted_socket() == os.path.join(chosen, "daemon.sock")
    return made


@as_root
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("missing", "xdg/ssocred"),
        ("ours", "xdg/ssocred"),
        ("ours-loose", "xdg/ssocred"),
        ("symlink", "cache/ssocred/run"),
        ("directory", "cache/ssocred/run"),
        ("file", "cache/ssocred/run"),
        ("xdg-foreign", "cache/ssocred/run"),
        ("xdg-loose", "cache/ssocred/run"),
        ("xdg-symlink", "cache/ssocred/run"),
    ],
)
def test_runtime_dir_and_paths_agree(defaults: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     state: str, expected: str) -> None:
    no_run_user()
    xdg = private_xdg(tmp_path)
    entry = xdg / "ssocred"
    target = victim(tmp_path)
    if state == "ours":
        entry.mkdir(mode=0o700)
    elif state == "ours-loose":
        entry.mkdir()
        entry.chmod(0o755)
    elif state in ("symlink", "directory"):
        plant(entry, state, target)
    elif state == "file":
        entry.write_text("not a directory\n")
    elif state == "xdg-foreign":
        os.chown(xdg, STRANGER, STRANGER)
    elif state == "xdg-loose":
        xdg.chmod(0o755)
    elif state == "xdg-symlink":
        linked = tmp_path / "xdg-link"
        linked.symlink_to(xdg)
        xdg = linked
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    before, target_before = snapshot(tmp_path), snapshot(target)
    assert socket_protocol.runtime_dir() == str(tmp_path / expected)
    socket_protocol.socket_path()
    socket_protocol.trusted_socket()
    assert snapshot(tmp_path) == before  # choosing creates nothing
    made = agree()
    assert made == tmp_path / expected and mode(made) == 0o700
    assert snapshot(target) == target_before
    lock_dir = paths.lock_dir()
    assert lock_dir == made / "locks" and mode(lock_dir) == 0o700


def test_without_xdg_runtime_dir_the_cache_dir_is_used(defaults: Path, tmp_path: Path) -> None:
    no_run_user()
    assert socket_protocol.runtime_dir() == str(defaults)
    assert not (tmp_path / "cache").exists()
    made = agree()
    assert made == defaults
    for directory in (tmp_path / "cache", tmp_path / "cache" / "ssocred", defaults):
        assert mode(directory) == 0o700, directory


def test_home_cache_dir_when_xdg_cache_home_is_unset(defaults: Path, home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    no_run_user()
    monkeypatch.delenv("XDG_CACHE_HOME")
    home.chmod(0o755)
    made = agree()
    assert made == home / ".cache" / "ssocred" / "run"
    assert mode(home) == 0o755  # an existing parent is left alone
    for directory in (home / ".cache", home / ".cache" / "ssocred", made):
        assert mode(directory) == 0o700, directory


@as_root
def test_every_place_planted_is_one_clear_error(defaults: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    no_run_user()
    (tmp_path / "cache" / "ssocred").mkdir(parents=True)
    plant(defaults, "symlink", victim(tmp_path))
    with pytest.raises(ConfigError, match="no private directory") as info:
        paths.runtime_dir()
    assert "SSOCRED_RUNTIME_DIR" in info.value.line() and "\n" not in info.value.line()
    assert not socket_protocol.trusted(socket_protocol.runtime_dir()) and socket_protocol.trusted_socket() is None


def test_trusted_only_a_real_private_directory_of_ours(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir(mode=0o700)
    good.chmod(0o700)
    assert socket_protocol.trusted(str(good)) and socket_protocol.private(str(good))
    link = tmp_path / "link"
    link.symlink_to(good)
    assert not socket_protocol.trusted(str(link))
    good.chmod(0o750)
    assert not socket_protocol.trusted(str(good))
    assert not socket_protocol.trusted(str(tmp_path / "missing"))
    if os.getuid() == 0:
        good.chmod(0o700)
        os.chown(good, STRANGER, STRANGER)
        assert not socket_protocol.trusted(str(good))


def test_private_dir_makes_new_parents_private_and_leaves_old_ones(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)
    deep = existing / "a" / "b" / "c"
    assert paths.private_dir(deep) == deep
    assert mode(existing) == 0o755
    for directory in (existing / "a", existing / "a" / "b", deep):
        assert mode(directory) == 0o700, directory
    deep.chmod(0o755)  # as an older version left it: ours, so it is fixed
    paths.private_dir(deep)
    assert mode(deep) == 0o700


@as_root
@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_private_dir_refuses_what_is_not_ours(tmp_path: Path, kind: str) -> None:
    target = victim(tmp_path)
    at = tmp_path / "planted"
    plant(at, kind, target)
    before, planted = snapshot(target), snapshot(at)
    with pytest.raises(ConfigError, match=str(at)):
        paths.private_dir(at)
    with pytest.raises(ConfigError, match=str(at)):
        paths.private_dir(at / "below")
    assert snapshot(target) == before and snapshot(at) == planted


@as_root
def test_nothing_is_created_under_a_strangers_directory(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, STRANGER, STRANGER)
    with pytest.raises(ConfigError, match="cannot create"):
        paths.private_dir(theirs / "state")
    with pytest.raises(ConfigError, match="cannot create"):
        paths.atomic_write(theirs / "sub" / "x.json", b"{}")
    assert os.listdir(theirs) == []


def test_atomic_write_makes_missing_parents_private(tmp_path: Path) -> None:
    existing = tmp_path / "aws"
    existing.mkdir()
    existing.chmod(0o755)
    target = existing / "sso" / "cache" / "x.json"
    paths.atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}" and mode(target) == 0o600
    assert mode(existing) == 0o755
    assert mode(existing / "sso") == 0o700 and mode(existing / "sso" / "cache") == 0o700
    (existing / "sso").chmod(0o755)  # an existing parent is never chmodded
    paths.atomic_write(target, b"[]")
    assert mode(existing / "sso") == 0o755


def test_a_socket_path_too_long_is_named() -> None:
    short = "/run/user/1000/ssocred/daemon.sock"
    assert socket_protocol.bindable(short) == short
    long = "/tmp/" + "r" * 120 + "/daemon.sock"
    with pytest.raises(ServiceError, match="cannot listen on") as info:
        socket_protocol.bindable(long)
    assert info.value.fix == "set SSOCRED_RUNTIME_DIR to a short, writable path"


# --- real processes -------------------------------------------------------------------------------


@pytest.mark.slow
@as_root
@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_a_planted_runtime_dir_steers_nothing(sso: RunningEmulator, defaults: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, daemons: list[RunningDaemon],
                                              kind: str) -> None:
    xdg = private_xdg(tmp_path)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    target = victim(tmp_path)
    planted = xdg / "ssocred"
    plant(planted, kind, target)
    before, planted_before = snapshot(target), snapshot(planted)
    login()

    r = run(*PROCESS)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(f"not using {planted}") == 1, r.stderr
    d = start_daemon(daemons, tmp_path, "--verbose")
    answered = run(*PROCESS)
    assert answered.returncode == 0, answered.stderr
    d.wait_log(ANSWERED)
    assert f"not using {planted}" in d.log_text()
    assert f"socket {defaults / 'daemon.sock'}" in d.log_text()
    assert d.stop() == 0, d.diagnostics()

    assert snapshot(target) == before and snapshot(planted) == planted_before
    assert_private_tree(defaults)


@pytest.mark.slow
@as_root
def test_the_old_tmp_name_is_never_touched(sso: RunningEmulator, defaults: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    no_run_user()
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("TMPDIR", str(shared))
    old = shared / f"ssocred-{os.getuid()}"
    target = victim(tmp_path)
    plant(old, "symlink", target)
    before, link = snapshot(target), snapshot(old)
    login()
    r = run(*PROCESS)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # nothing planted where ssocred looks
    assert snapshot(target) == before and snapshot(old) == link
    assert_private_tree(defaults)


@pytest.mark.slow
@pytest.mark.parametrize("cache_home", [True, False])
def test_without_xdg_runtime_dir_process_uses_the_cache_dir(sso: RunningEmulator, defaults: Path, home: Path,
                                                            monkeypatch: pytest.MonkeyPatch, cache_home: bool) -> None:
    no_run_user()
    if not cache_home:
        monkeypatch.delenv("XDG_CACHE_HOME")
        defaults = home / ".cache" / "ssocred" / "run"
    login()
    r = run(*PROCESS)
    assert r.returncode == 0, r.stderr
    assert_private_tree(defaults)
    assert mode(defaults.parent) == 0o700 and mode(defaults.parent.parent) == 0o700


@pytest.mark.slow
@as_root
@pytest.mark.parametrize("xdg_state", ["foreign", "loose"])
def test_an_xdg_runtime_dir_that_is_not_private_is_skipped(sso: RunningEmulator, defaults: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, xdg_state: str) -> None:
    no_run_user()
    xdg = private_xdg(tmp_path)
    if xdg_state == "foreign":
        os.chown(xdg, STRANGER, STRANGER)
    else:
        xdg.chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    login()
    r = run(*PROCESS)
    assert r.returncode == 0, r.stderr
    assert os.listdir(xdg) == []
    assert_private_tree(defaults)


def test_export_makes_aws_sso_private(sso: RunningEmulator, home: Path) -> None:
    aws = home / ".aws"
    aws.chmod(0o755)
    r = run("login", "--export-aws-cli-cache")
    assert r.returncode == 0, r.stderr
    assert mode(aws) == 0o755
    assert mode(aws / "sso") == 0o700 and mode(aws / "sso" / "cache") == 0o700


@pytest.mark.slow
@as_root
@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_an_explicit_runtime_dir_of_another_user_is_one_line(sso: RunningEmulator, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    login()
    target = victim(tmp_path)
    planted = tmp_path / "explicit"
    plant(planted, kind, target)
    before, planted_before = snapshot(target), snapshot(planted)
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(planted))

    r = run(*PROCESS)
    assert r.returncode == EXIT_CONFIG, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and str(planted) in lines[0] and "SSOCRED_RUNTIME_DIR" in lines[0], r.stderr
    assert r.stdout == ""
    d = run("daemon", "--log-file", str(tmp_path / "daemon.log"), timeout=60)
    assert d.returncode == EXIT_CONFIG, d.stderr
    assert d.stderr.count("\n") == 1 and str(planted) in d.stderr
    assert snapshot(target) == before and snapshot(planted) == planted_before


@pytest.mark.slow
def test_a_socket_path_too_long_is_a_clear_daemon_error(sso: RunningEmulator, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    login()
    long_dir = tmp_path / ("r" * 120)
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(long_dir))
    r = run(*PROCESS)  # no daemon can listen there, but the work gets done all the same
    assert r.returncode == 0, r.stderr
    try:
        d = run("daemon", "--log-file", str(tmp_path / "daemon.log"), timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the daemon started on a socket path that cannot exist")
    assert d.returncode == EXIT_SERVICE, d.stderr
    assert d.stderr == (f"ssocred: cannot listen on {long_dir / 'daemon.sock'}: "
                        f"{len(str(long_dir / 'daemon.sock'))} bytes, more than a Unix socket path may have "
                        f"({socket_protocol.MAX_SOCKET_PATH}); set SSOCRED_RUNTIME_DIR to a short, writable path\n")
