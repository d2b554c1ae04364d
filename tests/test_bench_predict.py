"""The collection-scale benchmark runs the real command line and measures each run on its own."""

from __future__ import annotations

import json

from conftest import make_rows

from blgenre import data
from blgenre.models import baseline, bench_predict
from blgenre.paths import model_dir


def test_collection_table_measures_each_cli_run(real_data, tmp_artifacts, tmp_path):
    books, _ = data.clean(make_rows())
    model = baseline.BaselineModel.train_on_split(books.iloc[:80], books.iloc[80:100])
    model.save(model_dir("baseline"), n_train=80)
    rows = bench_predict.collection_table({"baseline": model_dir("baseline")}, [40, 300],
                                          tmp_path / "bench", chunk_size=50)
    assert [r["titles"] for r in rows] == [40, 300]
    for row in rows:
        assert row["kind"] == "baseline" and row["titles_per_s"] > 0
        # the child's own peak (os.wait4), not this test process's: a Python with sklearn
        assert 30 < row["peak_mb"] < 1500
    out = tmp_path / "bench" / "baseline-300.csv"
    assert sum(1 for _ in open(out)) == 301  # every title got its row (and the header)
    assert not (tmp_path / "bench" / "titles-300.txt").exists()  # inputs are removed


def test_main_writes_the_report_the_book_shows(real_data, tmp_artifacts, tmp_path):
    books, _ = data.clean(make_rows())
    model = baseline.BaselineModel.train_on_split(books.iloc[:80], books.iloc[80:100])
    model.save(model_dir("baseline"), n_train=80)
    out = tmp_path / "collection.json"
    assert bench_predict.main(["--titles", "30", "--kinds", "baseline", "--out", str(out)]) == 0
    report = bench_predict.committed(out)
    assert report["rows"][0]["titles"] == 30 and report["threads"] == 2
    assert report["commit"] != "" and "cpu_count" in report["hardware"]
    assert bench_predict.committed(tmp_path / "missing.json") is None
    json.dumps(report)  # plain JSON


def test_each_kind_is_judged_by_its_largest_run():
    rows = [{"kind": "fastai", "titles": 10_000, "titles_per_s": 1_200.0, "peak_mb": 600.0},
            {"kind": "fastai", "titles": 1_000_000, "titles_per_s": 990.0, "peak_mb": 1_200.0},
            {"kind": "baseline", "titles": 1_000_000, "titles_per_s": 11_000.0,
             "peak_mb": 1_600.0},
            {"kind": "transformer", "titles": 50_000, "titles_per_s": 520.0, "peak_mb": 900.0},
            {"kind": "my_model", "titles": 50_000, "titles_per_s": 5.0, "peak_mb": 90.0}]
    table = bench_predict.against_targets(rows)
    assert list(table.index) == ["baseline", "fastai", "transformer"]  # no target: left out
    assert table.loc["fastai", "titles"] == 1_000_000  # not the faster small run
    assert table["meets"].to_dict() == {"baseline": False,  # too much memory
                                        "fastai": False, "transformer": True}


def test_append_measures_again_and_keeps_each_rows_commit():
    before = {"commit": "old", "rows": [{"kind": "baseline", "titles": 10}, {
        "kind": "transformer", "titles": 50, "titles_per_s": 200.0}]}
    rows = bench_predict.appended(before, [{"kind": "transformer", "titles": 50,
                                            "titles_per_s": 400.0, "commit": "new"}])
    assert [(r["kind"], r["commit"]) for r in rows] == [("baseline", "old"), ("transformer", "new")]
    assert [r["titles_per_s"] for r in rows if r["kind"] == "transformer"] == [400.0]
    assert bench_predict.appended(None, rows) == rows
    assert bench_predict.commits({"rows": rows}) == "commits new, old"
    assert bench_predict.commits({"rows": rows[:1]}) == "commit old"
