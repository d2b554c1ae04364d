"""LOCKSS copies: a lost copy, a lost bag, a bag without bagit.txt or a rewritten bag is noticed
(``python -m blgenre verify`` exits 1) and ``python -m blgenre repair`` restores it."""

from __future__ import annotations

import json
import shutil

import pytest

from blgenre.__main__ import main
from blgenre.sharing import lockss


@pytest.fixture
def copies(tmp_artifacts, tmp_path):
    """Three copies of two small bags under ``artifacts/lockss`` (the default root)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README.md").write_text("# Data documentation\n")
    (docs / "datasheet.md").write_text("## Motivation\n" * 20)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"kind": "baseline"}))
    (model / "model.skops").write_bytes(bytes(range(256)) * 40)
    made = lockss.lockss_copies({"hub-baseline": model, "data-docs": docs}, n=3)
    assert [c.name for c in made] == ["copy-1", "copy-2", "copy-3"]
    return tmp_artifacts / "lockss"


def verify_cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_intact_copies_verify_with_a_manifest(copies, capsys):
    manifest = json.loads((copies / "lockss.json").read_text())
    assert manifest["copies"] == ["copy-1", "copy-2", "copy-3"]
    assert set(manifest["bags"]) == {"hub-baseline", "data-docs"}
    code, out = verify_cli(capsys)
    assert code == 0 and "6 of 6 bag(s) intact" in out


@pytest.mark.parametrize("damage, expect", [
    (lambda root: shutil.rmtree(root / "copy-2" / "hub-baseline"), "bag missing"),
    (lambda root: (root / "copy-3" / "data-docs" / "bagit.txt").unlink(), "bagit.txt"),
    (lambda root: (root / "copy-1").rename(root / "copy-1-old"), "copy missing"),
    (lambda root: shutil.rmtree(root / "copy-3"), "copy missing"),
    (lambda root: (root / "lockss.json").unlink(), "lockss.json is missing"),
], ids=["lost-bag", "no-bagit-txt", "renamed-copy", "lost-copy", "lost-manifest"])
def test_verify_notices_what_was_lost(copies, capsys, damage, expect):
    damage(copies)
    code, out = verify_cli(capsys)
    assert code == 1 and expect in out and "FAILED" in out
    assert "python -m blgenre repair" in out


def test_a_rewritten_bag_differs_from_the_other_copies(copies, capsys):
    """Someone changes a file and re-bags it: the bag verifies alone, not against the copies."""
    import bagit

    bag = copies / "copy-2" / "data-docs"
    (bag / "data" / "README.md").write_text("# Something else\n")
    bagit.Bag(str(bag)).save(manifests=True)
    assert lockss.verify_bag(bag) == []
    code, out = verify_cli(capsys)
    assert code == 1 and "differs from the manifest" in out


def test_repair_restores_lost_copies_bags_and_files(copies, capsys):
    shutil.rmtree(copies / "copy-3")
    shutil.rmtree(copies / "copy-2" / "hub-baseline")
    (copies / "copy-1" / "data-docs" / "bagit.txt").unlink()
    (copies / "lockss.json").unlink()  # the copies know the layout too (copy.json)
    assert verify_cli(capsys)[0] == 1
    capsys.readouterr()
    assert main(["repair"]) == 0
    out = capsys.readouterr().out
    assert "copy-3" in out and "restored" in out
    code, out = verify_cli(capsys)
    assert code == 0 and "6 of 6 bag(s) intact" in out
    prints = {lockss.bag_fingerprint(copies / c / b) for c in ("copy-1", "copy-2", "copy-3")
              for b in ("hub-baseline", "data-docs")}
    assert len(prints) == 2  # every copy of each bag is the same again


def test_repair_without_a_good_copy_says_so(copies, capsys):
    for c in ("copy-1", "copy-2", "copy-3"):
        shutil.rmtree(copies / c / "data-docs")
    assert main(["repair"]) == 1
    out = capsys.readouterr().out
    assert "NOT restored" in out and "no copy of data-docs verifies" in out


def test_an_unreadable_manifest_is_one_line_exit_2(copies, capsys):
    (copies / "lockss.json").write_bytes(b"\xff\xfe not json")
    code, out = verify_cli(capsys)
    assert code == 2 and out.strip().count("\n") == 0 and "unreadable manifest" in out


def test_no_copies_at_all_is_one_line_exit_2(tmp_artifacts, capsys):
    code, out = verify_cli(capsys)
    assert code == 2 and out.startswith("error: nothing to verify")


def test_one_copy_checked_against_its_own_manifest(copies, capsys):
    """A copy given on the command line (as the chapter does) must hold every bag."""
    demo = shutil.copytree(copies / "copy-2", copies.parent / "demo" / "copy-2-demo")
    shutil.rmtree(demo / "data-docs")
    code, out = verify_cli(capsys, str(demo))
    assert code == 1 and "data-docs" in out and "bag missing" in out
