"""The package sources pip is configured with, as command-line options for ``uv pip install``.

``make install`` installs the pinned requirements with uv, which resolves and installs them
(bytecode compiled) in about a minute where pip takes about 3.5 min on 2 cores: most of CI's
set-up time. uv does not read pip's configuration files, so a machine whose pip is pointed at
local wheels, a mirror or a constraints file (as this book's build machines are) would make uv
resolve something else, or fail offline. This script reads ``pip config list`` and prints the
same sources as uv options.

It runs before the package is installed (``python blgenre/book/uvargs.py``), so it imports only
the standard library.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

#: pip option -> uv option; pip's values may hold several space-separated entries.
OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
           "find-links": "--find-links", "constraint": "--constraint"}
#: pip flags that uv spells the same way and that take no value.
FLAGS = {"no-index": "--no-index"}
#: pip takes the best version from all its indexes; uv, by default, only looks at the first index
#: that has a package at all (against dependency confusion), which here found an older
#: transformers on a local mirror and stopped. The book's requirements are all pinned, so pip's
#: rule is safe, and it is the one the pins were checked with.
PIP_STRATEGY = ("--index-strategy", "unsafe-best-match")


def parse(listing: str) -> list[str]:
    """uv options from the text of ``pip config list`` (``section.key='value'`` per line).

    Environment settings (``:env:``, from ``PIP_*``) come before the files' ones in pip's
    listing and win in pip; here every source is kept, because uv, like pip, looks in all of
    them. A value seen twice (file and environment) is passed once.
    """
    seen: list[tuple[str, ...]] = []
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        name, value = key.rsplit(".", 1)[-1], value.strip().strip("'\"")
        if name in FLAGS and value.lower() in {"1", "true", "yes", "on"}:
            options = [(FLAGS[name],)]
        else:
            options = [(OPTIONS[name], entry) for entry in value.split()] if name in OPTIONS else []
        seen += [option for option in options if option not in seen]
    if any(option[0] == "--extra-index-url" for option in seen):
        seen.append(PIP_STRATEGY)
    return [part for option in seen for part in option]


def main(pip: str = "pip") -> int:
    """Print the uv options for ``pip`` (the venv's pip, given as the first argument)."""
    proc = subprocess.run([pip, "config", "list"], capture_output=True, text=True)
    if proc.returncode != 0:  # no pip config at all: uv's defaults (PyPI) are pip's too
        return 0
    print(shlex.join(parse(proc.stdout)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
