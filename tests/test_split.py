"""The split: grouped (no title or record in two parts), stratified, reproducible."""

from __future__ import annotations

import pandas as pd

from blgenre import data
from blgenre.data import split


def _assert_no_leak(df: pd.DataFrame) -> None:
    keys = df.assign(key=df["title"].map(data.title_key))
    for column in ("key", "record_id"):
        parts = keys.groupby(column)["split"].nunique()
        assert (parts == 1).all(), f"{column} shared across splits: {parts[parts > 1].index[:5]}"


def test_groups_join_shared_titles():
    books = pd.DataFrame({"record_id": ["1", "2", "3", "3"],
                          "title": ["Poems", "POEMS.", "Other", "Another"]})
    g = split.groups(books)
    assert g[0] == g[1] and g[2] == g[3] and g[0] != g[2]


def test_small_split_grouped_and_reproducible(rows):
    books, _ = data.clean(rows)
    # give several books the same title in different case: they must stay together
    books.loc[books.index[:6], "title"] = ["Poems", "poems", "POEMS", "Verses", "verses", "Verses!"]
    a, b = split.make_split(books, seed=1), split.make_split(books, seed=1)
    pd.testing.assert_frame_equal(a, b)
    _assert_no_leak(a)
    assert set(a["split"]) == {"train", "valid", "test"}
    assert not a.equals(split.make_split(books, seed=2))


def test_real_split(real_data, tmp_artifacts):
    df = split.create_split()
    _assert_no_leak(df)
    info = split.split_info()
    assert sum(info["sizes"].values()) == len(df) == info["load_report"]["books"]
    assert 0.10 < info["sizes"]["test"] / len(df) < 0.20
    for part in split.SPLITS:
        share = (df.loc[df["split"] == part, "label"] == "Fiction").mean()
        assert 0.18 < share < 0.32, (part, share)
    again = split.create_split()
    assert info["split_sha256"] == split.split_info()["split_sha256"]
    pd.testing.assert_frame_equal(split.load_split(), again, check_dtype=False)
