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
