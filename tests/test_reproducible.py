"""Two builds of the same files give the same deposit archive, byte for byte."""

from __future__ import annotations

import os
import time

from conftest import make_rows

from blgenre import data
from blgenre.evaluation.evaluate import evaluate
from blgenre.integrity import sha256_file
from blgenre.models import baseline
from blgenre.paths import model_dir
from blgenre.sharing import share


def test_deposit_twice_gives_the_same_archive(tmp_artifacts, monkeypatch):
    books, _ = data.clean(make_rows())
    train, valid, test = books.iloc[:80], books.iloc[80:100], books.iloc[100:]
    model = baseline.BaselineModel.train_on_split(train, valid)
    model.save(model_dir("baseline"), n_train=len(train))
    evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0])
    first = share.deposit(["baseline"], out=tmp_artifacts / "one")
    time.sleep(1.1)  # a later build: every file is written again, with new times
    for path in model_dir("baseline").iterdir():
        os.utime(path)
    second = share.deposit(["baseline"], out=tmp_artifacts / "two")
    assert sha256_file(first["archive"]) == sha256_file(second["archive"])
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # honoured: another fixed time
    third = share.deposit(["baseline"], out=tmp_artifacts / "three")
    assert sha256_file(third["archive"]) != sha256_file(first["archive"])
