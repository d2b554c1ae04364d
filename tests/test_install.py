"""The package installs from a git URL, as the chapters' Colab setup cell does, and works there.

A fresh virtual environment gets ``pip install --no-deps git+file://<checkout>`` (a real,
non-editable install of the committed tree). Its dependencies come from the book's own
environment through a path file, so the test takes seconds rather than a 2 GB download, but
``blgenre`` itself is only the installed copy: the chapter runs in an empty folder outside the
checkout, so anything the package needs must be package data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from blgenre.paths import PROJECT_ROOT

CHAPTER = "exploring"  # quick, reads the data, makes the split, draws figures


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    shown = " ".join(map(str, cmd))
    assert proc.returncode == 0, f"{shown} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def git_venv(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    root = tmp_path_factory.mktemp("git-install")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    # the book's environment supplies the dependencies (not the checkout: no .pth processing)
    (site / "book_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         f"git+file://{PROJECT_ROOT}"], cwd=root)
    return venv


def test_installed_copy_is_used_and_has_its_package_data(git_venv):
    python = git_venv / "bin" / "python"
    probe = ("import json, blgenre, importlib.resources as r; from blgenre import paths; "
             "print(json.dumps({'file': blgenre.__file__, 'in_checkout': paths.IN_CHECKOUT, "
             "'data': sorted(str(p.relative_to(paths.PACKAGE_DIR)) for p in "
             "paths.PACKAGE_DIR.rglob('*') if p.is_file() and p.suffix not in ('.py', '.pyc'))}))")
    info = json.loads(run([str(python), "-c", probe], cwd=git_venv.parent).stdout)
    assert str(git_venv) in info["file"] and not info["in_checkout"]
    tracked = run(["git", "ls-files", "blgenre"], cwd=PROJECT_ROOT).stdout.split()
    wanted = sorted(str(Path(f).relative_to("blgenre")) for f in tracked
                    if not f.endswith(".py"))
    assert sorted(info["data"]) == wanted  # every non-Python file of the package is installed


def test_a_chapter_runs_against_the_git_install(git_venv, real_data, tmp_path):
    python = git_venv / "bin" / "python"
    run([str(python), "-m", "ipykernel", "install", "--prefix", str(git_venv), "--name", "gitcopy"])
    work = tmp_path / "reader"
    work.mkdir()
    shutil.copy(PROJECT_ROOT / "chapters" / f"{CHAPTER}.ipynb", work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLGENRE_")}
    env |= {"BLGENRE_DATA": str(real_data), "BLGENRE_WORKSHOP": "1",
            "JUPYTER_PATH": str(git_venv / "share" / "jupyter"), "PYTHONPATH": ""}
    run([str(python), "-m", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.kernel_name=gitcopy", "--ExecutePreprocessor.timeout=600",
         "--output", "done.ipynb", f"{CHAPTER}.ipynb"], cwd=work, env=env)
    assert (work / "artifacts" / "split.csv").is_file()  # artifacts/ in the reader's folder
    executed = json.loads((work / "done.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
