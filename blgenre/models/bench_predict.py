"""Collection-scale benchmark of ``blgenre predict``: throughput and peak memory through the CLI.

Serves the chapter 'Inference at scale'. A synthetic collection is made of real titles (the
book's split, repeated and shuffled with a seed) and classified by the command line exactly as a
librarian would run it, in a child process whose peak resident memory and wall time are
measured (the resident memory of the child and any worker it starts, summed and sampled:
:class:`TreeMemory`). Since ``predict`` streams its input in chunks, memory should not grow
with the input, and the book shows it at two sizes.

The 1,000,000-title table takes most of an hour on two cores, too long for a book build:
``python -m blgenre.models.bench_predict --titles 1000000 --out benchmarks/collection.json``
writes it, and the chapter shows the file with the machine and commit that made it.
On a shared CPU the numbers are a lower bound of what the machine can do.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from blgenre import runinfo
from blgenre.paths import PROJECT_ROOT


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


class TreeMemory:
    """Peak of the summed resident memory of a process and its children, sampled every 50 ms.

    ``predict`` may start a worker process (:mod:`blgenre.models.predict_streams`); the
    operating system's own peak (``ru_maxrss``) is that of the largest process, not of the
    two together. Pages the processes share are counted twice, so this errs on the high side.
    """

    def __init__(self, pid: int, every: float = 0.05):
        import threading

        import psutil

        self.peak, self._stop = 0, threading.Event()
        self._root = psutil.Process(pid)
        self._thread = threading.Thread(target=self._watch, args=(every,), daemon=True)
        self._thread.start()

    def _watch(self, every: float) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._root, *self._root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:  # a process ended between listing and reading
                pass
            self._stop.wait(every)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak


def run_cli(model: str | Path, titles: str | Path, output: str | Path, fast: bool = False,
            threads: int = 2, extra: tuple[str, ...] = ()) -> dict:
    """Run ``python -m blgenre predict`` in a child process; wall time, titles/s, peak memory."""
    n = sum(1 for _ in open(titles, "rb"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "blgenre", "predict", "--quiet", "--overwrite", "--model",
           str(model), "--input", str(titles), "--output", str(output), *extra]
    if fast:
        cmd.append("--fast")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watch = TreeMemory(proc.pid)
    err = proc.stderr.read().decode(errors="replace")  # (small: --quiet)
    _, status, usage = os.wait4(proc.pid, 0)
    peak = watch.stop()
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"predict failed ({proc.returncode}): {err.strip()[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"model": Path(model).name, "fast": fast, "titles": n,
            "seconds": round(seconds, 1), "titles_per_s": round(n / seconds, 1),
            # on a shared machine, titles per CPU-second shows what the program itself costs
            "cpu_seconds": round(cpu, 1), "titles_per_cpu_s": round(n / cpu, 1),
            "peak_mb": round(max(peak, usage.ru_maxrss * 1024) / 2**20, 1)}


def collection_table(models: dict[str, Path], sizes: list[int], workdir: str | Path,
                     threads: int = 2, chunk_size: int | None = None) -> list[dict]:
    """One CLI run per model and input size (``--fast`` for every model: the baseline has no
    faster variant and runs as it is). Inputs and outputs are written under ``workdir``.
    A small ``chunk_size`` shows on small inputs what streaming does for large ones."""
    extra = ("--chunk-size", str(chunk_size)) if chunk_size else ()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        titles = synthetic_titles(n, workdir / f"titles-{n}.txt")
        for name, folder in models.items():
            rows.append({"kind": name, **run_cli(folder, titles, workdir / f"{name}-{n}.csv",
                                                  fast=True, threads=threads, extra=extra)})
        titles.unlink()
    return rows


#: Where the committed collection-scale measurement lives (made by :func:`main`, shown in the book).
COMMITTED = PROJECT_ROOT / "benchmarks" / "collection.json"


def appended(before: dict | None, rows: list[dict]) -> list[dict]:
    """``rows`` after the rows of an earlier report ``before``, less those it measures again
    (same kind and size); each earlier row keeps the commit that measured it."""
    if not before:
        return rows
    again = {(row["kind"], row["titles"]) for row in rows}
    kept = [{**row, "commit": row.get("commit", before.get("commit"))} for row in before["rows"]
            if (row["kind"], row["titles"]) not in again]
    return kept + rows


def commits(report: dict) -> str:
    """The commit (or commits, when runs were appended later) that measured ``report``'s rows."""
    found = sorted({row.get("commit", report.get("commit", "unknown")) for row in report["rows"]})
    return ("commit " if len(found) == 1 else "commits ") + ", ".join(found)


def committed(path: str | Path = COMMITTED) -> dict | None:
    """The committed collection-scale benchmark (``benchmarks/collection.json``), if present."""
    return runinfo.read_report(path)


#: What the collection-scale benchmark should show on two cores (the issue that asked for
#: streaming): titles per second through the command line, by kind, and peak memory in MB.
TARGET_TITLES_PER_S = {"baseline": 5_000, "fastai": 1_000, "transformer": 500}
TARGET_PEAK_MB = 1_500


def against_targets(rows: list[dict]):
    """Each kind's largest run (the steadiest rate) beside its targets, and whether it meets
    them. Kinds without a target (user-trained variants) are left out."""
    import pandas as pd

    table = pd.DataFrame(rows)
    largest = table.sort_values("titles").groupby("kind").last()
    out = pd.DataFrame({
        "titles": largest["titles"],
        "titles_per_s": largest["titles_per_s"],
        "target_titles_per_s": [TARGET_TITLES_PER_S.get(k) for k in largest.index],
        "peak_mb": largest["peak_mb"],
        "target_peak_mb": TARGET_PEAK_MB}).dropna(subset=["target_titles_per_s"])
    out["meets"] = ((out["titles_per_s"] >= out["target_titles_per_s"])
                    & (out["peak_mb"] <= out["target_peak_mb"]))
    return out.astype({"target_titles_per_s": int})


def main(argv: list[str] | None = None) -> int:
    from blgenre.models import registry
    from blgenre.paths import artifacts_dir, model_dir

    parser = argparse.ArgumentParser(prog="python -m blgenre.models.bench_predict",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--titles", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=list(registry.names()))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print it)")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out (e.g. other kinds at other sizes)")
    args = parser.parse_args(argv)
    models = {k: model_dir(k) for k in args.kinds}
    rows = collection_table(models, args.titles, artifacts_dir("bench_predict"), args.threads)
    commit = runinfo.commit(ignore=args.out)
    before = committed(args.out) if args.append and args.out else None
    rows = appended(before, [{**row, "commit": commit} for row in rows])
    report = {"rows": rows, "hardware": runinfo.hardware(), "versions": runinfo.versions(),
              "threads": args.threads, "commit": commit}
    runinfo.write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
