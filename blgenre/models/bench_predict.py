"""Collection-scale benchmark of ``blgenre predict``: throughput and peak memory through the CLI.

Serves the chapters 'Inference at scale' and 'Your own collection'. A synthetic collection is
made of real titles (the book's split, repeated and shuffled with a seed) and classified by the
command line exactly as a librarian would run it, in a child process whose peak resident memory
(``ru_maxrss``) and wall time are measured. On a shared CPU the numbers are a lower bound of
what the machine can do; run it on a quiet machine for the book.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def synthetic_titles(n: int, path: str | Path, seed: int = 0) -> Path:
    """Write ``n`` real titles (repeated, shuffled) one per line to ``path``."""
    from blgenre.data import split

    titles = split.load_split()["title"].astype(str).str.replace("\n", " ").to_numpy()
    rng = np.random.default_rng(seed)
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, n, 100_000):
            picks = titles[rng.integers(0, len(titles), size=min(100_000, n - start))]
            fh.write("\n".join(picks) + "\n")
    return path


def run_cli(model: str | Path, titles: str | Path, output: str | Path, fast: bool = False,
            threads: int = 2, extra: tuple[str, ...] = ()) -> dict:
    """Run ``python -m blgenre predict`` in a child process; wall time, titles/s, peak memory."""
    n = sum(1 for _ in open(titles, "rb"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "blgenre", "predict", "--quiet", "--overwrite", "--model",
           str(model), "--input", str(titles), "--output", str(output), *extra]
    if fast:
        cmd.append("--fast")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"predict failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    return {"model": Path(model).name, "fast": fast, "titles": n,
            "seconds": round(seconds, 1), "titles_per_s": round(n / seconds, 1),
            # on a shared machine, titles per CPU-second shows what the program itself costs
            "cpu_seconds": round(cpu, 1), "titles_per_cpu_s": round(n / cpu, 1),
            "peak_mb": round(peak_kib / 1024, 1),
            "peak_measured": peak_kib > before}  # ru_maxrss is the largest child so far
