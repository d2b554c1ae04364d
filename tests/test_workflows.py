"""The GitHub Actions workflows (.github/workflows/) pass actionlint and zizmor, offline.

Both linters are pinned in requirements.txt. Without them the linter tests skip, except in CI
(``CI`` set), where a missing linter fails the test. zizmor runs with ``--offline``: no network
and no GitHub token needed (its online audits are left out).

The structural checks below (every action pinned to a commit, no ``pull_request_target``,
least permissions) need only PyYAML and always run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.y*ml"))

# owner/repo[/path]@<40 hex digits>
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
# the line form: `uses: owner/repo@<sha> # vX.Y.Z`
PINNED_LINE = re.compile(r"uses:\s*\S+@[0-9a-f]{40}\s+#\s*v\d+\.\d+\.\d+\s*$")


def _tool(name: str) -> str | None:
    """The linter beside this Python (the book's venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def _require_tool(name: str) -> str:
    path = _tool(name)
    if path is None:
        reason = f"{name} is not installed (it is pinned in requirements.txt: run `make install`)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; in CI the workflow checks must run")
        pytest.skip(reason)
    return path


def _offline_env() -> dict[str, str]:
    """The environment without GitHub tokens, so that no linter can go online with them."""
    env = dict(os.environ)
    for key in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"):
        env.pop(key, None)
    env["NO_COLOR"] = "1"
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=_offline_env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def _report(result: subprocess.CompletedProcess) -> str:
    return (f"{' '.join(result.args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _triggers(workflow: dict) -> set[str]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    if isinstance(on, dict):
        return set(on)
    return set()


def _steps(workflow: dict):
    for job_id, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def _uses(workflow: dict):
    """Every `uses:` of the workflow: steps' actions and jobs' reusable workflows."""
    for job_id, job in (workflow.get("jobs") or {}).items():
        if "uses" in job:
            yield job_id, job["uses"]
        for step in job.get("steps") or []:
            if "uses" in step:
                yield job_id, step["uses"]


def test_the_publishing_workflows_exist():
    names = {path.name for path in WORKFLOWS}
    assert {"book.yml", "test.yml"} <= names, names


def test_actionlint_passes():
    actionlint = _require_tool("actionlint")
    result = _run([actionlint, "-oneline", "-no-color", *map(str, WORKFLOWS)])
    assert result.returncode == 0, _report(result)


def test_zizmor_passes_offline():
    zizmor = _require_tool("zizmor")
    result = _run([zizmor, "--offline", "--no-progress", "--color=never",
                   "--persona=pedantic", str(WORKFLOWS_DIR)])
    assert result.returncode == 0, _report(result)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path: Path):
    workflow = _load(path)
    uses = list(_uses(workflow))
    assert uses, f"{path.name} uses no action"
    unpinned = [(job, ref) for job, ref in uses
                if not ref.startswith("./") and not PINNED.match(ref)]
    assert not unpinned, f"{path.name}: not pinned to a full commit sha: {unpinned}"
    # and each pin says which release it is, for people and for update bots
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
             if re.match(r"\s*(-\s*)?uses:", line) and "./" not in line]
    missing = [line for line in lines if not PINNED_LINE.search(line)]
    assert not missing, f"{path.name}: pins without a `# vX.Y.Z` comment: {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target(path: Path):
    triggers = _triggers(_load(path))
    assert triggers, f"{path.name} has no `on:` triggers"
    assert "pull_request_target" not in triggers, (
        f"{path.name} runs on pull_request_target: it would run a pull request's code with "
        "the base repository's secrets and a write token")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_permissions_and_no_persisted_credentials(path: Path):
    workflow = _load(path)
    top = workflow.get("permissions")
    assert top in ({}, "read-all", {"contents": "read"}), (
        f"{path.name}: top-level permissions must be {{}} or read-only, not {top!r}")
    for job_id, _job, step in _steps(workflow):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, (
                f"{path.name}, job {job_id}: checkout must set persist-credentials: false")
        # no ${{ }} expansion inside shell scripts: that is how template injection happens
        assert "${{" not in str(step.get("run", "")), (
            f"{path.name}, job {job_id}: pass values to `run:` through `env:`, not ${{{{ }}}}")
    for job_id, job in workflow["jobs"].items():
        writes = {scope for scope, level in (job.get("permissions") or {}).items() if level == "write"}
        if job_id == "deploy":
            assert writes == {"pages", "id-token"}, f"{path.name}, job deploy writes {writes}"
        else:
            assert not writes, f"{path.name}, job {job_id} asks to write {writes}"


def test_pages_are_deployed_by_the_official_actions():
    book = _load(WORKFLOWS_DIR / "book.yml")
    assert {"push", "workflow_dispatch"} <= _triggers(book)
    on = book.get("on", book.get(True))
    assert on["push"]["branches"] == ["main"]
    refs = {ref.split("@")[0] for _, ref in _uses(book)}
    assert {"actions/configure-pages", "actions/upload-pages-artifact",
            "actions/deploy-pages"} <= refs, refs
    deploy = book["jobs"]["deploy"]
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["needs"] == "build"
    assert book.get("concurrency", {}).get("group") == "pages"
    runs = [step.get("run", "") for _, _, step in _steps(book)]
    assert "make book" in runs
    # online: the data comes from the British Library through the package's data layer
    envs = [book.get("env") or {}] + [job.get("env") or {} for job in book["jobs"].values()]
    envs += [step.get("env") or {} for _, _, step in _steps(book)]
    assert not any("BLGENRE_DATA" in env for env in envs)
