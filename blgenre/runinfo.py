"""Software versions and hardware of this run, for metadata and the execution-statistics page."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = (
    "blgenre", "torch", "fastai", "transformers", "accelerate", "datasets", "huggingface_hub",
    "scikit-learn", "pandas", "numpy", "gradio", "jupyter-book", "myst-nb", "sphinx",
)


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``'not installed'`` if absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, str]:
    """CPU, core count and memory of this machine."""
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": str(os.cpu_count())}
    try:
        import psutil

        info["memory_gib"] = f"{psutil.virtual_memory().total / 2**30:.1f}"
    except ImportError:
        pass
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        info["gpu"] = "unknown"
    return info


def is_volatile(key: str) -> bool:
    """Whether a ``model.json`` or metrics key holds a measurement of one build (a duration, the
    machine), not a property of the model: such keys are left out of every shared copy, so that
    two builds of one commit share the same bytes (:mod:`blgenre.sharing.reproduce`)."""
    return (key in ("seconds", "hardware") or key.startswith("seconds_")
            or key.endswith(("_seconds", "_runtime", "_per_second")))  # (Trainer logs too)


def stable(value):
    """``value`` (parsed JSON) without the keys :func:`is_volatile` names, at any depth."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if not is_volatile(str(k))}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def commit(ignore: str | os.PathLike | None = None) -> str:
    """The checkout's git commit (12 hex digits, ``+changes`` if files differ from it), or
    ``'unknown'`` outside a git checkout (an installed package): which code made a benchmark.

    ``ignore`` is the report being written: a run that adds to it (``--append``) would
    otherwise call its own earlier output a change to the code. The committed measurements in
    ``benchmarks/*.json`` are never code either: one benchmark made while another's output was
    not yet committed would otherwise be marked too.
    """
    import subprocess
    from pathlib import Path

    from blgenre.paths import PROJECT_ROOT

    try:
        head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        report = Path(ignore).resolve() if ignore else None
        # (a report written outside the checkout is not in git's view: excluding it there would
        # make git fail and the commit read 'unknown')
        skip = [f":(exclude){report}"] if report and report.is_relative_to(
            Path(PROJECT_ROOT).resolve()) else []
        skip.append(f":(exclude){PROJECT_ROOT / 'benchmarks'}/*.json")
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain",
                                "--untracked-files=no", "--", ".", *skip], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def write_report(report: dict, out: str | os.PathLike | None) -> None:
    """Write a measurement too long for a book build (``benchmarks/*.json``) to ``out``, or
    print it when ``out`` is None."""
    import json
    from pathlib import Path

    text = json.dumps(report, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    else:
        print(text)


def read_report(path: str | os.PathLike) -> dict | None:
    """A committed measurement written by :func:`write_report`, or ``None`` if there is none."""
    import json
    from pathlib import Path

    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
