"""Binder (repo2docker) installs the same pinned set as the book's own builds.

binder/requirements.txt includes ../requirements.txt and adds PyTorch's CPU index; binder/postBuild
then installs the package and removes torchvision, as the Makefile's `install` does; and
binder/runtime.txt asks for the Python the workflows and requirements.txt are checked on.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
PYTHON = "3.11"  # the Python of requirements.txt, the CI workflows and Binder
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _logical_lines(path: Path) -> list[str]:
    """Lines of a pip requirements file without comments, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def parse_requirements(path: Path, _seen: frozenset[Path] = frozenset()):
    """(requirements by canonical name, pip options) of a file, `-r` includes resolved.

    pip reads a nested `-r` path relative to the file that names it.
    """
    path = path.resolve()
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    assert path not in _seen, f"{path} includes itself"
    requirements: dict[str, Requirement] = {}
    options: list[tuple[str, str]] = []
    for line in _logical_lines(path):
        if line.startswith("-"):
            words = shlex.split(line)
            flag, _, value = words[0].partition("=")
            if not value and len(words) > 1:
                value = words[1]
            if flag in ("-r", "--requirement"):
                included, included_options = parse_requirements(path.parent / value, _seen | {path})
                for name, req in included.items():
                    assert name not in requirements or str(requirements[name]) == str(req), (
                        f"{where}: {name} pinned differently: {requirements[name]} / {req}")
                    requirements[name] = req
                options += included_options
            else:
                options.append((flag, value))
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in requirements or str(requirements[name]) == str(req), (
            f"{where}: {name} pinned differently: {req} / {requirements[name]} (included)")
        requirements[name] = req
    return requirements, options


def _pin(req: Requirement) -> str | None:
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


def test_requirements_txt_pins_every_requirement():
    requirements, _ = parse_requirements(ROOT / "requirements.txt")
    assert requirements
    loose = [str(req) for req in requirements.values() if _pin(req) is None]
    assert not loose, f"requirements.txt: not pinned with ==: {loose}"


def test_binder_installs_exactly_the_pinned_set():
    book, _ = parse_requirements(ROOT / "requirements.txt")
    binder, _ = parse_requirements(BINDER / "requirements.txt")
    missing = sorted(set(book) - set(binder))
    extra = sorted(set(binder) - set(book))
    differ = sorted(f"{name}: binder {binder[name]} / requirements.txt {book[name]}"
                    for name in set(book) & set(binder)
                    if (binder[name].specifier, binder[name].marker, binder[name].extras)
                    != (book[name].specifier, book[name].marker, book[name].extras))
    assert not missing, f"binder/requirements.txt lacks {missing}"
    assert not extra, f"binder/requirements.txt adds {extra} (add them to requirements.txt)"
    assert not differ, "binder/requirements.txt pins differently:\n" + "\n".join(differ)


def test_binder_adds_only_the_torch_cpu_index():
    _, options = parse_requirements(BINDER / "requirements.txt")
    # an --index-url would replace PyPI; only PyTorch's CPU index may be added beside it
    assert options == [("--extra-index-url", TORCH_CPU_INDEX)], options


def _commands(path: Path) -> list[str]:
    return [" ".join(line.split()) for line in _logical_lines(path)]


def test_postbuild_installs_the_package_and_removes_torchvision_like_the_makefile():
    postbuild = BINDER / "postBuild"
    assert postbuild.read_text(encoding="utf-8").startswith("#!"), "postBuild needs a shebang"
    commands = _commands(postbuild)
    uninstall = re.compile(r"pip3? uninstall (.* )?(--yes|-y)( .*)? torchvision\b")
    assert any(uninstall.search(command) for command in commands), (
        f"binder/postBuild does not remove torchvision: {commands}")
    assert any(re.search(r"pip3? install .*-e \.$", command) for command in commands), commands

    # the Makefile's install step does the same (a fresh `make install` and Binder agree)
    makefile = _commands(ROOT / "Makefile")
    assert any(uninstall.search(command) for command in makefile), (
        "the Makefile no longer removes torchvision: keep binder/postBuild in step with it")


def test_runtime_is_the_python_of_the_book():
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", runtime)
    assert match, f"binder/runtime.txt: {runtime!r} is not of the form python-X.Y"
    assert match.group(1) == PYTHON, f"Binder runs Python {match.group(1)}, the book {PYTHON}"

    header = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert f"Python {PYTHON}" in header, "requirements.txt no longer says which Python it is for"

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject, re.MULTILINE)
    assert requires and PYTHON in SpecifierSet(requires.group(1)), "pyproject.toml excludes it"


@pytest.mark.parametrize("name", ["book.yml", "test.yml"])
def test_ci_workflows_use_the_same_python(name: str):
    path = ROOT / ".github" / "workflows" / name
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    versions = [str(step["with"]["python-version"])
                for job in workflow["jobs"].values() for step in job.get("steps") or []
                if str(step.get("uses", "")).startswith("actions/setup-python@")]
    assert versions == [PYTHON], f"{name} sets up Python {versions}, Binder {PYTHON}"
