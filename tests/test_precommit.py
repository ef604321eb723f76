"""`.pre-commit-hooks.yaml`, run by pre-commit itself: a temporary git repository whose
`.pre-commit-config.yaml` points at a copy of this checkout (its working tree, committed in a
scratch repository, so uncommitted changes are what is tested) runs `cfspec-lint` and
`cfspec-fmt` on its .scm files. pre-commit installs cfspec into its own environment from that
copy, as it would for a user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def snapshot_of_checkout(dest: Path) -> str:
    """This checkout's files (tracked and untracked, minus ignored ones) committed in a new
    repository at `dest`; returns the commit."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return git(dest, "rev-parse", "HEAD").strip()


def test_hooks_run_on_a_temporary_repo(tmp_path: Path) -> None:
    hooks = tmp_path / "cfspec"
    hooks.mkdir()
    rev = snapshot_of_checkout(hooks)
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks.as_posix()}\n    rev: {rev}\n"
        "    hooks:\n      - id: cfspec-lint\n      - id: cfspec-fmt\n", encoding="utf-8")
    cake = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    (project / "good.scm").write_text(cake, encoding="utf-8")
    (project / "messy.scm").write_text(
        'scm s{prompt "A {{ W }} and a {{ C }}."\nvar W="woman"\nvar C = "cake"\n'
        ' W->C\n  counterfactual man{do(W="man")}}\n', encoding="utf-8")
    # Not .scm: the hooks must not see it (and would fail on it if they did).
    (project / "notes.scm.txt").write_text("not a spec {", encoding="utf-8")
    git(project, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "cache"))
    env.pop("VIRTUAL_ENV", None)

    def pre_commit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=project, env=env,
                              capture_output=True, text=True, check=False, timeout=900)

    first = pre_commit("run", "--all-files")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "cfspec lint" in first.stdout and "cfspec fmt" in first.stdout
    assert "files were modified by this hook" in first.stdout
    formatted = (project / "messy.scm").read_text(encoding="utf-8")
    assert formatted.startswith('scm s {\n  prompt "A {{ W }} and a {{ C }}."\n')
    assert "notes.scm.txt" not in first.stdout

    git(project, "add", "-A")
    again = pre_commit("run", "--all-files")
    assert again.returncode == 0, again.stdout + again.stderr

    (project / "cycle.scm").write_text(
        (ROOT / "specs" / "invalid" / "cycle.scm").read_text(encoding="utf-8"), encoding="utf-8")
    git(project, "add", "cycle.scm")
    failing = pre_commit("run", "cfspec-lint", "--all-files")
    assert failing.returncode == 1
    assert "error[SCM201]: cycle W -> A -> K -> W" in failing.stdout
