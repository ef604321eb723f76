"""torch's compile caches go to the user's own private folder, never to the shared temp dir, and
a cache folder another user could have written is refused (usercache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfspec.workspace import usercache

ROOT = Path(__file__).resolve().parent.parent


def test_the_cache_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "platform", "linux")
    folder = usercache.cfspec_cache("torchinductor")
    assert folder == tmp_path / "cache" / "cfspec" / "torchinductor"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cache" / "cfspec").stat().st_mode & 0o777 == 0o700


def test_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(usercache.UnsafeCacheError, match="writable by others"):
        usercache.private_dir(shared)


def test_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(usercache.UnsafeCacheError, match="not a folder"):
        usercache.private_dir(tmp_path / "link")


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder to another user needs root")
def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(usercache.UnsafeCacheError, match="another user"):
        usercache.private_dir(theirs)


def test_the_gpu_stages_point_torch_at_it(tmp_path: Path) -> None:
    code = ("import os, cfspec.gpu.generate, torch._inductor.config as c; "
            "from torch._inductor.runtime.cache_dir_utils import cache_dir; print(cache_dir())")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip() == str(tmp_path / "cache" / "cfspec" / "torchinductor")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_refused_cache_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "cfspec"
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    result = subprocess.run([sys.executable, "-m", "cfspec", "generate", str(tmp_path / "out"),
                             "--model", "tiny"], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # (after the warning that tiny has random weights)
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"cfspec: error: {cache} is writable by others: chmod 700 {cache}, or remove it"
