"""The repository address lives in ``_config.yml`` only; the chapters' setup cell is generated.

A fork changes ``repository.url`` in ``_config.yml`` and runs ``python -m blgenre.book.notebooks
sync``: every chapter's hidden setup cell, its notebook, ``CITATION.cff`` and the packaged
fallback then carry the new address, and ``check`` fails until they do.
"""

from __future__ import annotations

import importlib.machinery
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml

from blgenre.book import config, notebooks
from blgenre.paths import PROJECT_ROOT

OLD = config.repository_url()
NEW = "https://github.com/a-library/our-blgenre"


def test_repository_url_is_the_one_in_config_yml():
    written = yaml.safe_load((PROJECT_ROOT / "_config.yml").read_text())["repository"]["url"]
    assert config.repository_url() == written.rstrip("/")
    # installed copies (no _config.yml) fall back to the packaged constant, kept equal by sync
    assert config.REPOSITORY_URL == config.repository_url()


def test_installed_copy_uses_the_packaged_url(tmp_path):
    assert config.repository_url(tmp_path) == config.REPOSITORY_URL


def test_a_bad_url_is_a_one_line_error(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: blgenre-book/blgenre\n")
    with pytest.raises(ValueError, match=r"repository.url must be an https:// address") as exc:
        config.repository_url(tmp_path)
    assert "\n" not in str(exc.value)


def test_every_chapter_opens_with_the_generated_setup_cell():
    assert len(notebooks.chapter_sources()) >= 16
    for md in notebooks.chapter_sources():
        first = notebooks.expected_notebook(md).cells
        code = next(c for c in first if c.cell_type == "code")
        assert code.source == config.setup_cell(), md.name
        assert code.metadata.get("tags") == ["remove-cell"], md.name
        assert f'"blgenre @ git+{OLD}"' in code.source


def test_other_copies_of_the_url_agree():
    from blgenre.sharing import share, templating

    assert config.repository_url() in templating.deposit_usage([])
    assert f'repository-code: "{config.repository_url()}"' in share.citation_cff()
    assert f'repository-code: "{config.repository_url()}"\n' in (PROJECT_ROOT / "CITATION.cff").read_text()


def _book_copy(tmp_path):
    """The files ``sync`` reads and writes, copied under ``tmp_path``."""
    for name in ("_toc.yml", "_config.yml", "CITATION.cff", "blgenre/book/config.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    (tmp_path / "chapters").mkdir()
    for page in notebooks.toc_pages():
        shutil.copy(PROJECT_ROOT / f"{page}.md", tmp_path / f"{page}.md")
    notebooks.sync(tmp_path)
    assert notebooks.out_of_sync(tmp_path) == []
    return tmp_path


def test_a_new_url_in_config_yml_reaches_every_copy(tmp_path):
    root = _book_copy(tmp_path)
    chapters = notebooks.chapter_sources(root)
    before = {md: md.read_text() for md in chapters}
    cfg = root / "_config.yml"
    cfg.write_text(cfg.read_text().replace(f"url: {OLD}", f"url: {NEW}"))

    problems = notebooks.out_of_sync(root)
    assert "CITATION.cff: repository address differs from _config.yml" in problems
    assert "blgenre/book/config.py: repository address differs from _config.yml" in problems
    for md in chapters:
        assert f"chapters/{md.name}: setup cell differs from its template" in problems

    written = notebooks.sync(root)
    assert notebooks.out_of_sync(root) == []
    assert set(written) >= set(chapters) | {md.with_suffix(".ipynb") for md in chapters}
    for md in chapters:
        text = md.read_text()
        assert NEW in text and OLD not in text
        assert NEW in md.with_suffix(".ipynb").read_text()
        # only the setup cell changed: the rest of the chapter is byte for byte the same
        assert text.split("\n```\n", 1)[1] == before[md].split("\n```\n", 1)[1]
        assert text.split(config.setup_cell(NEW))[0] == before[md].split(config.setup_cell(OLD))[0]
    assert f'repository-code: "{NEW}"' in (root / "CITATION.cff").read_text()
    assert f'REPOSITORY_URL = "{NEW}"' in (root / "blgenre/book/config.py").read_text()


def test_check_catches_a_hand_edited_setup_cell_and_sync_needs_one(tmp_path):
    root = _book_copy(tmp_path)
    md = root / "chapters" / "baseline.md"
    original = md.read_text()
    md.write_text(original.replace("--quiet", "-q"))
    assert notebooks.out_of_sync(root)[0] == "chapters/baseline.md: setup cell differs from its template"

    # a chapter without the setup cell is named, and sync writes nothing
    md.write_text(original.replace(":tags: [remove-cell]\n", "", 1))
    with pytest.raises(ValueError, match=r"^chapters/baseline.md: its first code cell is not"):
        notebooks.sync(root)
    assert notebooks.out_of_sync(root)[0].startswith("chapters/baseline.md: its first code cell")
    assert ":tags: [remove-cell]" not in md.read_text().split("## Overview")[0]


class _Shell:
    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line):
        self.magics.append(f"%{name} {line}")


def _run_setup_cell(monkeypatch, *, colab: bool, torch: str) -> _Shell:
    """Execute the setup cell as IPython would, in a fake runtime (Colab or not, torch kind)."""
    from IPython.core.inputtransformer2 import TransformerManager

    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if torch == "absent":
        monkeypatch.setitem(sys.modules, "torch", None)  # find_spec then says: not installed
    else:
        fake = types.ModuleType("torch")
        fake.__spec__ = importlib.machinery.ModuleSpec("torch", None)
        fake.cuda = types.SimpleNamespace(is_available=lambda: torch == "gpu")
        monkeypatch.setitem(sys.modules, "torch", fake)
    shell = _Shell()
    exec(TransformerManager().transform_cell(config.setup_cell()), {"get_ipython": lambda: shell})
    return shell


@pytest.mark.parametrize("colab, torch, says", [
    (True, "cpu", True), (True, "gpu", False), (True, "absent", False), (False, "cpu", False)])
def test_setup_cell_tells_a_colab_reader_without_gpu_that_cpu_is_fine(monkeypatch, capsys, colab,
                                                                       torch, says):
    shell = _run_setup_cell(monkeypatch, colab=colab, torch=torch)
    out = capsys.readouterr().out
    assert shell.magics == []  # blgenre is importable here: nothing to install
    assert out == ("This Colab runtime has no GPU. That is fine: every chapter runs on a CPU.\n"
                   if says else "")


def test_setup_cell_installs_the_package_from_the_configured_url(monkeypatch):
    monkeypatch.setitem(sys.modules, "blgenre", None)  # as in a fresh Colab runtime
    shell = _run_setup_cell(monkeypatch, colab=True, torch="gpu")
    assert shell.magics == [f'%pip install --quiet "blgenre @ git+{OLD}"']


# ------------------------------------------------------------ make install: pip's sources for uv
def test_uv_gets_the_package_sources_pip_is_configured_with():
    from blgenre.book.uvargs import parse

    listing = ("\n".join([":env:.cert='/etc/ssl/certs/ca.crt'", ":env:.find-links='/opt/wheels'",
                          "global.constraint='/etc/pip/constraints.txt'",
                          "global.extra-index-url='file:///a/simple file:///b/simple'",
                          "global.find-links='/opt/wheels'", "global.timeout='60'"]))
    assert parse(listing) == [
        "--find-links", "/opt/wheels", "--constraint", "/etc/pip/constraints.txt",
        "--extra-index-url", "file:///a/simple", "--extra-index-url", "file:///b/simple",
        "--index-strategy", "unsafe-best-match"]  # pip's rule across indexes, which the pins need
    assert parse("global.no-index='true'\nglobal.index-url='https://m/simple'") == [
        "--no-index", "--index-url", "https://m/simple"]
    assert parse("") == []
    # and the Makefile compiles bytecode as pip does (PYTHONDONTWRITEBYTECODE machines need it)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "uv pip install --quiet --compile-bytecode" in makefile


def test_uvargs_runs_before_the_package_is_installed():
    """The Makefile runs it by path with the venv's Python before ``-e .``: standard library only."""
    import ast
    import subprocess

    from blgenre.book import uvargs

    path = PROJECT_ROOT / "blgenre" / "book" / "uvargs.py"
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    pip = shutil.which("pip", path=str(Path(sys.executable).parent)) or "pip"
    proc = subprocess.run([sys.executable, str(path), pip], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    known = {*uvargs.OPTIONS.values(), *uvargs.FLAGS.values(), uvargs.PIP_STRATEGY[0]}
    assert {arg for arg in proc.stdout.split() if arg.startswith("--")} <= known, proc.stdout


def test_tool_folders_are_not_read_as_pages(tmp_path):
    """`make test` leaves .pytest_cache/README.md in the repository; Sphinx read it as a page
    outside the table of contents, and the ``-W`` build after a test run failed on it."""
    from sphinx.project import EXCLUDE_PATHS
    from sphinx.util.matching import get_matching_files

    for page in ("chapters/intro.md", ".pytest_cache/README.md", ".ruff_cache/x/README.md",
                 "node_modules/long/README.md", ".venv/lib/README.md"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("# A page\n")
    patterns = yaml.safe_load((PROJECT_ROOT / "_config.yml").read_text())["exclude_patterns"]
    found = set(get_matching_files(tmp_path, ["**"], [*patterns, *EXCLUDE_PATHS]))
    assert found == {"chapters/intro.md"}
