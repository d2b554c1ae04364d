"""Part I analyses: crowd agreement, the data audit and the exploration summaries.

Most tests use tiny hand-made frames whose answers can be worked out on paper; the last ones
check the headline findings on the real data (skipped when it is not available).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blgenre import data
from blgenre.data import audit, crowd, explore
from blgenre.evaluation import plots

# --- crowd: agreement -------------------------------------------------------------------------


def _answers(table: dict[str, list[str]]) -> pd.DataFrame:
    """{'book': [answer, ...]} -> one row per answer."""
    return pd.DataFrame([{"record_id": k, "answer": a} for k, v in table.items() for a in v])


def test_pairwise_agreement_by_hand():
    # a: 3 of 3 pairs agree; b: 1 of 3; c: 3 of 3; d has one answer and is left out.
    frame = _answers({"a": ["F", "F", "F"], "b": ["F", "N", "N"], "c": ["N", "N", "N"],
                      "d": ["F"]})
    result = crowd.pairwise_agreement(frame)
    assert result["items"] == 3
    assert result["pairs"] == 9
    assert result["agreeing_pairs"] == 7
    assert result["pair_agreement"] == pytest.approx(7 / 9)
    assert result["item_agreement"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert result["unanimous"] == pytest.approx(2 / 3)


def test_fleiss_kappa_by_hand():
    frame = _answers({"a": ["F", "F", "F"], "b": ["F", "N", "N"], "c": ["N", "N", "N"]})
    p_bar = (1 + 1 / 3 + 1) / 3
    p_e = (4 / 9) ** 2 + (5 / 9) ** 2
    assert crowd.fleiss_kappa(frame) == pytest.approx((p_bar - p_e) / (1 - p_e))


def test_fleiss_kappa_matches_fleiss_1971_example():
    """The worked example of Fleiss (1971) as reproduced widely: 10 subjects, 14 raters, 5
    categories, kappa = 0.210."""
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
              [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
              [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    rows = [{"record_id": i, "answer": j} for i, row in enumerate(counts)
            for j, n in enumerate(row) for _ in range(n)]
    assert crowd.fleiss_kappa(pd.DataFrame(rows)) == pytest.approx(0.210, abs=0.001)


def test_kappa_perfect_chance_and_undefined():
    perfect = _answers({"a": ["F", "F"], "b": ["N", "N"]})
    assert crowd.fleiss_kappa(perfect) == pytest.approx(1.0)
    # every pair disagrees: observed 0, chance 0.5 -> kappa -1
    opposed = _answers({"a": ["F", "N"], "b": ["N", "F"]})
    assert crowd.fleiss_kappa(opposed) == pytest.approx(-1.0)
    # one category only: kappa undefined
    assert np.isnan(crowd.fleiss_kappa(_answers({"a": ["F", "F"], "b": ["F", "F"]})))
    # no item with two answers: nothing to measure
    assert np.isnan(crowd.fleiss_kappa(_answers({"a": ["F"], "b": ["N"]})))


def test_gini_and_concentration():
    assert crowd.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert crowd.gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n-1)/n for one doer among n
    frame = pd.DataFrame({"user": ["u1"] * 6 + ["u2"] * 3 + ["u3"], "answer": ["F"] * 10})
    conc = crowd.concentration(frame)
    assert conc["volunteers"] == 3
    assert conc["top1_share"] == pytest.approx(0.6)
    assert conc["single_classification_volunteers"] == 1
    summary = crowd.volunteer_summary(frame)
    assert summary["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def _export(rows: list[dict]) -> pd.DataFrame:
    base = {"classification_id": "1", "user_name": "1", "subject_ids": "10", "genre": "Fiction",
            "BL record ID": "r1", "title": "T", "created_at": "2020-05-04 08:08:27 UTC",
            "retired": "", "Languages from MARC record": "English"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_prepare_normalises_answers_and_reads_retired_subject():
    export = _export([
        {"genre": "The book contains both Fiction and Non-Fiction", "retired": "{'subject_id': 10}"},
        {"classification_id": "2", "genre": "Can't tell", "subject_ids": "11",
         "retired": "{'subject_id': 10}"},
        {"classification_id": "3", "genre": "Non-fiction", "retired": "not a dict"},
    ])
    prepared = crowd.prepare(export)
    assert prepared["answer"].tolist() == ["both", "can't tell", "Non-fiction"]
    assert prepared["retired_subject"].tolist() == ["10", "10", ""]
    check = crowd.subject_check(prepared)
    assert check.loc[3, "same_subject"] == pytest.approx(1 / 3)
    counts = crowd.answer_counts(prepared)
    assert list(counts.index) == list(crowd.ANSWERS)
    assert counts["classifications"].sum() == 3


def test_genre_terms_and_coverage():
    export = _export([
        {"FAST_genre_terms": "655 7 $aPoetry$2fast", "genre": "Fiction"},
        {"classification_id": "2", "FAST_genre_terms": "655 7 ǂaNovels.ǂ2fast\n655 7 $aFiction",
         "genre": "Fiction"},
        {"classification_id": "3", "FAST_genre_terms": "NONE", "genre": "Non-fiction"},
    ])
    terms = crowd.genre_terms(export)
    assert terms.loc["Poetry", "Fiction"] == 1
    assert terms.loc["Novels", "Fiction"] == 1  # trailing full stop removed
    assert terms.loc["(no term)", "Non-fiction"] == 1
    raw = pd.DataFrame({"classification_id": ["1.0", "3.0"]})
    cov = crowd.coverage(crowd.prepare(export), raw)
    assert (cov["in_file"], cov["not_in_file"]) == (2, 1)


# --- audit ------------------------------------------------------------------------------------


def _raw(rows: list[dict]) -> pd.DataFrame:
    base = {"BL record ID": "r1", "Title": "A Title", "annotator_genre": "Fiction",
            "Date of publication": "1850", "Languages": "English",
            "annotator_date_pub": "1850", "annotator_normalised_date_pub": "1850",
            "Place of publication": "London", "annotator_place_pub": "London",
            "annotator_country": "enk", "annotator_title": "A Title",
            "annotator_publisher": "Smith", "annotator_FAST_subject_terms": "NONE",
            "annotator_FAST_genre_terms": "", "annotator_comments": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_date_comparison_on_hand_made_rows():
    raw = _raw([
        {"BL record ID": "same"},
        {"BL record ID": "one-apart", "annotator_normalised_date_pub": "1851"},
        {"BL record ID": "far", "annotator_normalised_date_pub": "[1872]"},
        {"BL record ID": "fallback", "annotator_normalised_date_pub": "NONE",
         "annotator_date_pub": "MDCCCL [1850]"},
        {"BL record ID": "missing", "annotator_normalised_date_pub": "NONE",
         "annotator_date_pub": "NONE"},
    ])
    checks = audit.row_checks(raw).set_index("record_id")
    assert checks.loc["same", "date_agrees"] == 1
    assert checks.loc["one-apart", "date_agrees"] == 1  # within DATE_TOLERANCE
    assert checks.loc["far", "date_agrees"] == 0
    assert checks.loc["far", "year_diff"] == 22
    assert checks.loc["fallback", "annotator_year"] == 1850
    assert np.isnan(checks.loc["missing", "date_agrees"])
    flags = audit.record_flags(checks.reset_index())
    assert flags.loc["missing", "status"] == "untestable"
    assert flags.loc["same", "status"] == "consistent"
    assert flags.loc["far", "status"] == "date only"  # place and country still agree


def test_suspect_needs_a_second_witness():
    raw = _raw([
        {"BL record ID": "wrong-book", "Languages": "Danish", "Place of publication": "Kjøbenhavn",
         "annotator_normalised_date_pub": "1887", "annotator_place_pub": "Paris",
         "annotator_country": "fr"},
        {"BL record ID": "variant", "Languages": "Danish", "Place of publication": "Kjøbenhavn",
         "annotator_place_pub": "København", "annotator_country": "dk"},
    ])
    checks = audit.row_checks(raw).set_index("record_id")
    assert checks.loc["wrong-book", "place_matches"] == 0
    assert checks.loc["wrong-book", "country_plausible"] == 0
    assert checks.loc["variant", "country_plausible"] == 1
    flags = audit.record_flags(checks.reset_index())
    assert flags.loc["wrong-book", "status"] == "suspect"
    assert flags.loc["variant", "status"] == "consistent"


@pytest.mark.parametrize("catalogue, annotator, expected", [
    ("London", "London", 1.0), ("Edinburgh ; London", "London\nNew York", 1.0),
    ("London", "London [printed]", 1.0), ("Stockholm", "Paris", 0.0), ("London", "NONE", None),
    ("Bruxelles.", "bruxelles", 1.0),
])
def test_place_match(catalogue, annotator, expected):
    result = audit.place_match(catalogue, annotator)
    assert np.isnan(result) if expected is None else result == expected


@pytest.mark.parametrize("languages, codes, expected", [
    ("English", "enk", 1.0), ("English", "nyu", 1.0), ("English", "onc", 1.0),
    ("English", "gw", 0.0), ("Dutch ; English", "enk", 1.0), ("Swedish", "sw", 1.0),
    ("Swedish", "fr", 0.0), ("Danish", "enk\nfr", 0.0), ("Russian", "ru", None),
    ("Danish", "NONE", None),
])
def test_country_plausible(languages, codes, expected):
    result = audit.country_plausible(languages, audit.country_codes(codes))
    assert np.isnan(result) if expected is None else result == expected


def test_identical_answers_detects_copies():
    frame = pd.DataFrame({"record_id": ["a", "a", "b", "b", "c"],
                          "answer": ["x", "x", "x", "y", "z"], "note": ["n", "n", "n", "n", "m"]})
    result = audit.identical_answers(frame, columns=("answer", "note"))
    assert result["records_with_several_rows"] == 2
    assert result["identical_records"] == 1


def test_label_conflicts_and_rows_per_record():
    raw = _raw([
        {"BL record ID": "a", "Title": "History of Rome"},
        {"BL record ID": "a", "Title": "History of Rome"},
        {"BL record ID": "b", "Title": "History of  rome!", "annotator_genre": "Non-fiction"},
        {"BL record ID": "c", "Title": "Poems", "Languages": "German"},
    ])
    conflicts = audit.label_conflicts(raw)
    assert conflicts["records_with_conflicts"] == 0
    assert conflicts["titles_with_conflicts"] == 1  # a and b share a title, not a label
    table = audit.rows_per_record(raw)
    assert table.loc["English", 2] == 1 and table.loc["English", 1] == 1
    assert table.loc["all", "all"] == 3


def test_leakage_table_on_made_up_rows(rows):
    from blgenre.data.split import make_split

    repeated = pd.concat([rows, rows, rows])  # every record three times
    books, _ = data.clean(repeated)
    leaks = audit.leakage_table(repeated, make_split(books), test_fraction=0.2)
    assert leaks.loc["random rows", "test items whose record is in training"] > 0
    assert leaks.loc["the book's grouped split", "test items whose title is in training"] == 0
    assert leaks.loc["the book's grouped split", "test items whose record is in training"] == 0


def test_record_flags_round_trip(tmp_artifacts):
    checks = audit.row_checks(_raw([{"BL record ID": "007"}]))
    path = audit.write_record_flags(audit.record_flags(checks))
    assert path.is_file()
    loaded = audit.load_record_flags()
    assert loaded["record_id"].tolist() == ["007"]
    assert loaded["status"].tolist() == ["consistent"]


def test_load_record_flags_absent(tmp_artifacts):
    assert audit.load_record_flags() is None


# --- explore ----------------------------------------------------------------------------------


def test_explore_tables(rows):
    books, _ = data.clean(rows)
    ov = explore.overview(books)
    assert ov["books"] == len(rows)
    assert ov["fiction"] == (rows["annotator_genre"] == "Fiction").sum()
    table = explore.label_table(books, "language", min_books=50)
    assert table["books"].sum() == len(books)
    assert table.index[-1] == "other" or "other" not in table.index
    assert ((table["Fiction"] + table["Non-fiction"]) == table["books"]).all()
    decades = explore.decade_table(books)
    assert list(decades.index) == sorted(decades.index)
    cues = explore.title_cues(books)
    assert cues.loc["Fiction", "genre word"] > cues.loc["Non-fiction", "genre word"]


def test_title_cues_brackets():
    books = pd.DataFrame({"title": ["Mirabelle [A novel.]", "A History [With maps.]", "Poems"],
                          "label": ["Fiction", "Non-fiction", "Fiction"], "year": [1890, 1880, 1870]})
    cues = explore.title_cues(books)
    assert cues.loc["Fiction", "genre word in brackets"] == pytest.approx(0.5)
    assert cues.loc["Non-fiction", "bracketed note"] == pytest.approx(1.0)
    assert explore.cue_examples(books)["title"].tolist() == ["Mirabelle [A novel.]"]


def test_part_one_plots_render(tmp_artifacts, rows):
    books, _ = data.clean(rows)
    image = plots.show(plots.fiction_share(books, "language"), "test_share")
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_artifacts / "figures" / "test_share.png").is_file()
    plots.show(plots.hist_by_label(books, "title_words"), "test_hist")
    plots.show(plots.bars(books["language"].value_counts(), horizontal=True), "test_bars")


# --- the real data: the audit's headline findings ----------------------------------------------


def test_real_data_findings(real_data):
    raw, _ = data.load_raw()
    checks = audit.row_checks(raw)
    by_english = audit.check_summary(checks, "english")
    assert by_english.loc[True, "date agrees (±1 y)"] > 0.9
    assert by_english.loc[False, "date agrees (±1 y)"] < audit.chance_date_agreement(checks)
    same = audit.identical_answers(audit.with_record(raw))
    assert same["identical_share"] > 0.99
    ann = crowd.prepare(data.load_annotations())
    assert ann["record_id"].nunique() >= len(data.load_books()[0])


def test_scores_by_status():
    preds = pd.DataFrame({"record_id": ["1", "2", "3", "4"],
                          "language": ["English"] * 2 + ["Dutch"] * 2,
                          "label": ["Fiction", "Non-fiction", "Fiction", "Non-fiction"],
                          "pred": ["Fiction", "Non-fiction", "Non-fiction", "Non-fiction"]})
    flags = pd.DataFrame({"record_id": ["1", "2", "3", "4"],
                          "status": ["consistent", "consistent", "suspect", "suspect"]})
    table = audit.scores_by_status(preds, flags)
    assert table.loc["consistent", "accuracy"] == 1.0
    assert table.loc["suspect", "accuracy"] == 0.5
    assert table.loc["other languages, suspect", "n"] == 2
