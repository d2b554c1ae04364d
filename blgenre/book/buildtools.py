"""Keeping the cached book build honest: ``python -m blgenre.book.buildtools prepare``.

Jupyter Book's execution cache is keyed on each chapter's code only. A change to the ``blgenre``
package or to the pinned requirements, or a missing ``artifacts/`` folder, would otherwise leave
stale outputs in the book, so ``prepare`` clears the cache in those cases and says why.
"""

from __future__ import annotations

import hashlib
import shutil
import sys

from blgenre.paths import PACKAGE_DIR, PROJECT_ROOT, artifacts_dir

CACHE = PROJECT_ROOT / "_build" / ".jupyter_cache"
STAMP = PROJECT_ROOT / "_build" / ".inputs.sha256"


def inputs_digest() -> str:
    """sha256 over the package's source files, its templates and the requirements."""
    digest = hashlib.sha256()
    files = sorted([*PACKAGE_DIR.rglob("*.py"), *PACKAGE_DIR.rglob("*.j2")])
    files.append(PROJECT_ROOT / "requirements.txt")
    for path in files:
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare() -> str:
    """Clear the execution cache if its inputs changed; return the reason (or '')."""
    digest = inputs_digest()
    reason = ""
    if not artifacts_dir(create=False).exists():
        reason = "artifacts/ is missing"
    elif not STAMP.is_file() or STAMP.read_text().strip() != digest:
        reason = "the blgenre package or requirements changed"
    if reason and CACHE.exists():
        shutil.rmtree(CACHE)
        print(f"cleared the execution cache: {reason}", file=sys.stderr)
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(digest)
    artifacts_dir()
    return reason


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m blgenre.book.buildtools prepare")
    prepare()
