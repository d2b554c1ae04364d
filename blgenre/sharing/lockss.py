"""LOCKSS-style copies: BagIt bags in several copies, checked against a manifest and repaired.

Serves the chapter 'Sharing data' ("Lots of copies keep stuff safe"). :func:`lockss_copies`
bags every source once (:mod:`bagit`, sha256 manifests), copies the bags to ``copy-1`` ..
``copy-n`` and writes a manifest of what should exist: ``lockss.json`` at the root (the copies
and every bag with the sha256 of its BagIt manifest) and ``copy.json`` in each copy.

:func:`verify` reports, per bag, every problem it finds: a copy that is missing or renamed, a bag
missing from a copy, a folder that lost its ``bagit.txt``, a bag whose manifest differs from the
recorded one (so from the other copies), and any file that is missing, altered or not in its
bag's manifest. A lost copy is the first thing it notices. :func:`repair_copies` restores all of
that from a copy that verifies (and a lost ``lockss.json`` from the copies' own ``copy.json``,
which holds the same content); :func:`repair` restores the files of one bag.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from blgenre import __version__
from blgenre.errors import BLGenreError
from blgenre.integrity import sha256_file
from blgenre.paths import artifacts_dir

N_COPIES = 3
#: The manifest at the root of the copies, and the one inside each copy.
ROOT_MANIFEST, COPY_MANIFEST = "lockss.json", "copy.json"
#: The BagIt file whose sha256 identifies a bag's content (it lists every payload file's hash).
BAG_MANIFEST = "manifest-sha256.txt"


class FixityError(BLGenreError):
    """The copies cannot be checked or repaired (no copies, an unreadable manifest)."""


# --------------------------------------------------------------------------- making copies
def make_bag(src: str | Path, dst: str | Path, description: str) -> Path:
    """Copy ``src`` (a folder or a file) to ``dst`` and turn ``dst`` into a BagIt bag (sha256)."""
    import bagit

    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.mkdir(parents=True)
        shutil.copy2(src, dst / src.name)
    bagit.make_bag(str(dst), {
        "Source-Organization": "The blgenre book contributors",
        "External-Description": description,
        "External-Identifier": f"blgenre-{__version__}-{dst.name}",
    }, checksums=["sha256"])
    return dst


def bag_fingerprint(bag: str | Path) -> str | None:
    """sha256 of a bag's payload manifest (None if it has none): equal bags, equal prints."""
    path = Path(bag) / BAG_MANIFEST
    return sha256_file(path) if path.is_file() else None


def default_sources() -> dict[str, Path]:
    """Every Hub folder, the deposit and the data documentation (those that exist)."""
    sources = {f"hub-{p.name}": p for p in sorted(artifacts_dir("hub").iterdir()) if p.is_dir()}
    sources["deposit"] = artifacts_dir("deposit")
    if (artifacts_dir("data_docs") / "README.md").is_file():
        sources["data-docs"] = artifacts_dir("data_docs")
    return sources


def lockss_copies(sources: dict[str, Path] | None = None, n: int = N_COPIES,
                  root: str | Path | None = None) -> list[Path]:
    """Bag every source once in ``copy-1``, copy the bags to ``copy-2`` .. ``copy-n``.

    ``sources`` maps a bag name to a folder or file (default: :func:`default_sources`). Writes
    the manifests (``lockss.json``, ``copy.json``) and returns the copy folders.
    """
    from blgenre.sharing.cards import BOOK_TITLE

    root = Path(root) if root else artifacts_dir("lockss")
    sources = default_sources() if sources is None else sources
    names = [f"copy-{i}" for i in range(1, n + 1)]
    for stale in [*root.glob("copy-*"), root / ROOT_MANIFEST]:
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    first = root / names[0]
    for name, src in sources.items():
        make_bag(src, first / name, f"{BOOK_TITLE}: {name}")
    bags = {name: {"fingerprint": bag_fingerprint(first / name)} for name in sources}
    manifest = {"format": 1, "copies": names, "bags": bags}
    (first / COPY_MANIFEST).write_text(json.dumps(manifest, indent=2))
    copies = [first]
    for name in names[1:]:
        shutil.copytree(first, root / name)
        copies.append(root / name)
    (root / ROOT_MANIFEST).write_text(json.dumps(manifest, indent=2))
    return copies


# --------------------------------------------------------------------------- checking
@dataclass
class Problem:
    """One problem found in one bag (or copy)."""

    bag: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.bag}: {self.file}: {self.problem}"


def find_bags(path: str | Path) -> list[Path]:
    """``path`` if it is a bag, else every bag below it."""
    path = Path(path)
    if (path / "bagit.txt").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("bagit.txt"))


def verify_bag(path: str | Path) -> list[Problem]:
    """Every missing, altered or unexpected file of one bag (empty list: the bag is intact).

    Every file in the bag's manifests (payload and tag files) is re-hashed, so each damaged file
    is named, where ``bagit``'s own ``validate`` stops at the first failed summary check.
    """
    import bagit

    path = Path(path)
    if not path.is_dir():
        return [Problem(str(path), "-", "bag missing")]
    if not (path / "bagit.txt").is_file():
        return [Problem(str(path), "bagit.txt", "missing: the folder is no longer a BagIt bag")]
    try:
        bag = bagit.Bag(str(path))
    except (bagit.BagError, OSError, ValueError) as exc:
        return [Problem(str(path), "-", f"not a readable bag: {' '.join(str(exc).split())}")]
    problems = []
    for rel, hashes in sorted(bag.entries.items()):
        file = path / rel
        expected = hashes.get("sha256")
        if not file.is_file():
            problems.append(Problem(str(path), rel, "missing"))
            continue
        try:
            found = sha256_file(file)
        except OSError as exc:
            problems.append(Problem(str(path), rel, f"unreadable ({exc.strerror or exc})"))
            continue
        if expected and found != expected:
            problems.append(Problem(str(path), rel, f"altered (sha256 {found[:12]}..., "
                                                    f"expected {expected[:12]}...)"))
    for rel in bag.payload_files():
        if rel not in bag.entries:
            problems.append(Problem(str(path), rel, "not in the manifest"))
    return problems


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise FixityError(f"{path}: unreadable manifest ({type(exc).__name__}); restore it from "
                          "another copy, or run lockss_copies again") from None
    if not isinstance(value, dict) or not isinstance(value.get("bags"), dict):
        raise FixityError(f"{path}: not a manifest of bags; restore it from another copy")
    return value


def expected_layout(root: Path) -> tuple[list[str], dict[str, str | None], list[str]]:
    """``(copies, {bag: fingerprint}, notes)`` the root should hold.

    From ``lockss.json``; if that is lost, from the copies' own ``copy.json`` (the majority
    wins); for copies made before manifests existed, from the bags the copies hold.
    """
    notes: list[str] = []
    manifest = _read_json(root / ROOT_MANIFEST)
    present = sorted(p.name for p in root.glob("copy-*") if p.is_dir())
    if manifest is not None:
        return list(manifest.get("copies") or present), {
            name: (info or {}).get("fingerprint") for name, info in manifest["bags"].items()}, notes
    if not present:
        raise FixityError(f"nothing to verify: no LOCKSS copies and no {ROOT_MANIFEST} under "
                          f"{root} (run blgenre.sharing.share.lockss_copies first)")
    notes.append(f"{root / ROOT_MANIFEST} is missing: the copies are compared with each other")
    votes: Counter = Counter()
    for name in present:
        copy_manifest = _read_json(root / name / COPY_MANIFEST)
        if copy_manifest is not None:
            votes[json.dumps(copy_manifest, sort_keys=True)] += 1
    if votes:
        manifest = json.loads(votes.most_common(1)[0][0])
        return list(manifest.get("copies") or present), {
            k: (v or {}).get("fingerprint") for k, v in manifest["bags"].items()}, notes
    names = sorted({b.name for c in present for b in (root / c).iterdir() if b.is_dir()})
    return present, dict.fromkeys(names), notes


def _reference_prints(root: Path, copies: list[str], bags: dict) -> dict[str, str | None]:
    """Each bag's expected fingerprint: the manifest's, else the one most copies share."""
    ref = {}
    for name, recorded in bags.items():
        if recorded:
            ref[name] = recorded
            continue
        prints = Counter(bag_fingerprint(root / c / name) for c in copies)
        prints.pop(None, None)
        ref[name] = prints.most_common(1)[0][0] if prints else None
    return ref


def check_copy(copy: Path, bags: dict[str, str | None]) -> dict[str, list[Problem]]:
    """Check one copy against the bags it should hold: ``{bag path: problems}``."""
    report: dict[str, list[Problem]] = {}
    for name, fingerprint in bags.items():
        bag = copy / name
        problems = verify_bag(bag)
        found = bag_fingerprint(bag)
        if fingerprint and found and found != fingerprint and not problems:
            problems.append(Problem(str(bag), BAG_MANIFEST, "differs from the manifest and the "
                                    "other copies (the bag was rewritten)"))
        report[str(bag)] = problems
    for extra in sorted(p for p in copy.iterdir() if p.is_dir() and p.name not in bags):
        report[str(extra)] = [Problem(str(extra), "-", "not in the manifest (an unexpected "
                                      "folder: remove it or make the copies again)")]
    return report


def verify_root(root: str | Path | None = None) -> dict[str, list[Problem]]:
    """Check every copy under ``root`` (default ``artifacts/lockss``) against the manifest."""
    root = Path(root) if root else artifacts_dir("lockss", create=False)
    copies, bags, notes = expected_layout(root)
    ref = _reference_prints(root, copies, bags)
    report: dict[str, list[Problem]] = {}
    if notes:
        report[str(root / ROOT_MANIFEST)] = [Problem(str(root), ROOT_MANIFEST, n) for n in notes]
    for name in copies:
        copy = root / name
        if not copy.is_dir():
            report[str(copy)] = [Problem(str(copy), "-", "copy missing (deleted or renamed)")]
            continue
        report.update(check_copy(copy, ref))
    for extra in sorted(p for p in root.glob("copy-*") if p.is_dir() and p.name not in copies):
        report[str(extra)] = [Problem(str(extra), "-", "a copy not in the manifest")]
    return report


def default_copies() -> list[Path]:
    root = artifacts_dir("lockss", create=False)
    return sorted(root.glob("copy-*")) if root.is_dir() else []


def verify(paths=None) -> dict[str, list[Problem]]:
    """Check copies and bags: ``{bag (or copy): problems}``, an empty list meaning intact.

    With no ``paths``, every copy under ``artifacts/lockss`` against the manifest
    (:func:`verify_root`). Otherwise each path in turn: a LOCKSS root (it has ``lockss.json``),
    a copy (it has ``copy.json``: every bag it should hold), a bag, or a folder of bags.
    """
    if not paths:
        return verify_root()
    report: dict[str, list[Problem]] = {}
    for path in map(Path, paths):
        if (path / ROOT_MANIFEST).is_file():
            report.update(verify_root(path))
        elif (path / COPY_MANIFEST).is_file():
            report.update(check_copy(path, {k: (v or {}).get("fingerprint") for k, v in
                                            _read_json(path / COPY_MANIFEST)["bags"].items()}))
        else:
            bags = find_bags(path) if path.is_dir() else []
            if not bags:
                what = "no such folder" if not path.exists() else "no BagIt bag here"
                report[str(path)] = [Problem(str(path), "-", f"{what} (missing copy?)")]
            for bag in bags:
                report[str(bag)] = verify_bag(bag)
    return report


# --------------------------------------------------------------------------- repairing
def repair(bad: str | Path, good: str | Path) -> list[str]:
    """Restore the damaged files of bag ``bad`` from bag ``good`` (which must verify first)."""
    bad, good = Path(bad), Path(good)
    if verify_bag(good):
        raise FixityError(f"{good}: this copy fails its own check; choose another good copy")
    fixed = []
    for problem in verify_bag(bad):
        rel = problem.file
        if problem.problem == "not in the manifest":
            (bad / rel).unlink(missing_ok=True)
        elif (good / rel).is_file():
            (bad / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(good / rel, bad / rel)
        else:
            continue
        fixed.append(rel)
    if verify_bag(bad):
        raise FixityError(f"{bad}: still fails after repair; replace the whole copy from {good}")
    return fixed


def _replace_bag(bad: Path, good: Path) -> None:
    if bad.exists():
        shutil.rmtree(bad)
    bad.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(good, bad)


def repair_copies(root: str | Path | None = None) -> tuple[list[str], list[str]]:
    """Restore every copy under ``root`` to the manifest from copies that verify.

    Returns ``(done, left)``: what was restored, and what could not be (no good copy of a bag,
    or a folder that is not in the manifest, which is reported but never deleted).
    """
    root = Path(root) if root else artifacts_dir("lockss", create=False)
    copies, bags, _ = expected_layout(root)
    ref = _reference_prints(root, copies, bags)
    done, left = [], []
    for name, fingerprint in ref.items():
        good = next((root / c / name for c in copies
                     if not verify_bag(root / c / name)
                     and bag_fingerprint(root / c / name) == fingerprint), None)
        for c in copies:
            bag = root / c / name
            problems = verify_bag(bag)
            if not problems and bag_fingerprint(bag) == fingerprint:
                continue
            if good is None:
                left.append(f"{bag}: no copy of {name} verifies, so it cannot be restored")
                continue
            whole = any(p.file in ("-", "bagit.txt") for p in problems) or not problems
            if not whole:
                try:
                    files = repair(bag, good)
                    done.append(f"{bag}: restored {', '.join(files)} from {good}")
                    continue
                except FixityError:
                    pass  # fall back to replacing the whole bag
            _replace_bag(bag, good)
            done.append(f"{bag}: replaced by {good}")
    manifest = {"format": 1, "copies": copies,
                "bags": {k: {"fingerprint": v} for k, v in ref.items()}}
    for c in copies:
        if (root / c).is_dir() and not (root / c / COPY_MANIFEST).is_file():
            (root / c / COPY_MANIFEST).write_text(json.dumps(manifest, indent=2))
            done.append(f"{root / c / COPY_MANIFEST}: written")
    if not (root / ROOT_MANIFEST).is_file():
        (root / ROOT_MANIFEST).write_text(json.dumps(manifest, indent=2))
        done.append(f"{root / ROOT_MANIFEST}: written from the copies")
    for problems in verify_root(root).values():
        left.extend(str(p) for p in problems if "not in the manifest" in p.problem)
    return done, left
