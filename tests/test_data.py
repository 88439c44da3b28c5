"""Dataset loading in every supported layout, row validation, and the tutorial's split.
Never touches the network (tests/conftest.py sets HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import datasets
import pytest

from r1zero.task.data import (
    DataError,
    check_rows,
    generate_rows,
    load_rows,
    select,
    validate_row,
    write_jsonl,
)

datasets.disable_progress_bars()
ROWS = [{"nums": [44, 19, 35], "target": 28}, {"nums": [1, 2, 3, 4], "target": 10}]


@pytest.fixture
def ds() -> datasets.Dataset:
    return datasets.Dataset.from_list(ROWS)


def load(path, **kw):
    return load_rows(str(path), cache_dir=str(path.parent / "hf_cache"), **kw)


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl"])
def test_load_file(tmp_path, ds, suffix):
    path = tmp_path / f"data{suffix}"
    ds.to_parquet(str(path)) if suffix == ".parquet" else ds.to_json(str(path))
    loaded = load(path)
    assert loaded.rows == ROWS and loaded.skipped == 0


def test_load_arrow_file_and_save_to_disk(tmp_path, ds):
    ds.save_to_disk(str(tmp_path / "saved"))
    assert load(tmp_path / "saved").rows == ROWS
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    assert load(arrow).rows == ROWS


def test_load_dataset_dict_split(tmp_path, ds):
    test = datasets.Dataset.from_list(ROWS[:1])
    datasets.DatasetDict({"train": ds, "test": test}).save_to_disk(str(tmp_path / "dd"))
    assert load(tmp_path / "dd").rows == ROWS
    assert load(tmp_path / "dd", split="test").rows == ROWS[:1]
    with pytest.raises(DataError, match="no split 'validation'; it has"):
        load(tmp_path / "dd", split="validation")


def test_load_folder_of_files(tmp_path, ds):
    folder = tmp_path / "repo" / "data"
    folder.mkdir(parents=True)
    ds.to_parquet(str(folder / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(ROWS[:1]).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    assert load(tmp_path / "repo").rows == ROWS
    assert load(tmp_path / "repo", split="test").rows == ROWS[:1]


def test_missing_paths_and_hub_offline(tmp_path):
    for missing in [tmp_path / "nope.parquet", tmp_path / "a" / "b" / "c"]:
        with pytest.raises(DataError, match="no such data file or folder"):
            load_rows(str(missing))
    with pytest.raises(DataError, match="no such data file"):
        load_rows("data/train.jsonl")  # looks like owner/name, but is a file name
    start = time.perf_counter()
    with pytest.raises(DataError, match="cannot load 'no-such-owner/no-such-dataset'"):
        load_rows("no-such-owner/no-such-dataset", cache_dir=str(tmp_path / "c"))
    assert time.perf_counter() - start < 10
    (tmp_path / "x.csv").write_text("nums,target\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_rows(str(tmp_path / "x.csv"))


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_malformed_rows_named_by_their_line(tmp_path):
    rows = ROWS + [{"nums": "abc", "target": 3}, {"nums": [1, 2], "target": "x"}]
    path = write_lines(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as e:
        load(path)
    msg = str(e.value)
    assert "2 malformed row(s)" in msg and "skip_malformed" in msg
    assert "line 3: nums must be a non-empty list of integers, got 'abc'" in msg
    assert "line 4: target must be an integer, got 'x'" in msg
    loaded = load(path, skip_malformed=True)
    assert loaded.rows == ROWS and loaded.skipped == 2 and len(loaded.errors) == 2


def test_empty_and_missing_columns(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="is an empty file"):
        load(tmp_path / "empty.jsonl")
    datasets.Dataset.from_dict({"nums": [], "target": []}).to_parquet(str(tmp_path / "0.parquet"))
    with pytest.raises(DataError, match="has no rows in split 'train'"):
        load(tmp_path / "0.parquet")
    path = write_lines(tmp_path / "allbad.jsonl", [{"nums": [1], "target": 1}])
    with pytest.raises(DataError, match=r"no usable rows .* \(all malformed\)"):
        load(path, skip_malformed=True)
    path = write_lines(tmp_path / "cols.jsonl", [{"numbers": [1, 2], "target": 3}])
    with pytest.raises(DataError, match=r"lacks column\(s\) \['nums'\]"):
        load(path)


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"nums": [1, 2, 3], "target": 6}, None),
        ({"nums": [1.0, 2.0], "target": 3.0}, None),  # integer-valued floats are accepted
        ({"nums": (1, 2), "target": 3}, None),
        ({"nums": [0, 999999999999], "target": -5}, None),
        ({"nums": [1, 2, 3, 4, 5, 6], "target": 6}, None),
        ({"nums": None, "target": 6}, "non-empty list of integers, got None"),
        ({"target": 6}, "non-empty list"),
        ({"nums": [], "target": 6}, "non-empty list"),
        ({"nums": "1 2", "target": 6}, "got '1 2'"),
        ({"nums": [1, "2"], "target": 6}, "list of integers, got [1, '2']"),
        ({"nums": [1, True], "target": 6}, "list of integers"),  # bool is not a number here
        ({"nums": [1, 2.5], "target": 6}, "list of integers"),
        ({"nums": [1, float("nan")], "target": 6}, "list of integers"),
        ({"nums": [1, None], "target": 6}, "list of integers"),
        ({"nums": [7], "target": 7}, "2 to 6 numbers, got 1"),
        ({"nums": list(range(7)), "target": 7}, "2 to 6 numbers, got 7"),
        ({"nums": [-3, 5], "target": 2}, "non-negative"),
        ({"nums": [10**12, 5], "target": 2}, "at most 12 digits"),
        ({"nums": [1, 2], "target": None}, "target must be an integer, got None"),
        ({"nums": [1, 2], "target": True}, "target must be an integer"),
        ({"nums": [1, 2], "target": 2.5}, "target must be an integer"),
        ({"nums": [1, 2], "target": "3"}, "target must be an integer, got '3'"),
    ],
)
def test_validate_row(row, reason):
    fixed, why = validate_row(row)
    if reason is None:
        assert why is None and all(type(x) is int for x in [*fixed["nums"], fixed["target"]])
    else:
        assert fixed is None and reason in why


def test_check_rows_keeps_other_columns_and_lists_first_errors():
    assert check_rows([{"nums": [1, 2], "target": 3, "id": 9}], source="t").rows[0]["id"] == 9
    bad = [{"nums": [1], "target": 1}] * 8
    with pytest.raises(
        DataError, match=r"8 malformed row\(s\) in t: row 1: .*row 5: [^;]*; \.\.\."
    ):
        check_rows(bad, source="t")


def test_generate_rows_and_write_jsonl(tmp_path):
    rows = generate_rows(20, seed=1)
    assert rows == generate_rows(20, seed=1) and len(rows) == 20
    path = write_jsonl(rows, tmp_path / "sub" / "gen.jsonl")
    assert load(path).rows == rows


def test_select():
    rows = [{"nums": [i, 1], "target": i} for i in range(1000)]
    train, test = select(rows, seed=2025, n=500)
    assert (len(train), len(test)) == (450, 50)
    assert (train, test) == select(rows, seed=2025, n=500)  # deterministic
    assert train != select(rows, seed=2026, n=500)[0]
    ids = [r["target"] for r in train + test]
    assert len(set(ids)) == 500  # no row twice
    train, test = select(rows[:15], seed=0)  # fewer rows than n: all of them
    assert (len(train), len(test)) == (13, 2)  # test = ceil(0.1 * 15)
    assert select(rows, seed=0, n=10, test_size=0.0)[1] == []
    for kwargs in [{"test_size": 1.0}, {"test_size": -0.1}, {"n": 0}]:
        with pytest.raises(ValueError):
            select(rows, seed=0, **kwargs)
    with pytest.raises(ValueError, match="nothing to train on"):
        select(rows[:1], seed=0)


def test_rows_of_a_parquet_file_count_from_one(tmp_path):
    """The first row is row 1, as a viewer shows it (was: row 0)."""
    bad = datasets.Dataset.from_list(ROWS + [{"nums": [7], "target": 7}])
    bad.to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(DataError, match="1 malformed row\\(s\\) in .*: row 3: nums must have"):
        load(tmp_path / "bad.parquet")


def test_line_numbers_count_blank_lines_as_an_editor_does(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n\n" + json.dumps({"nums": "x", "target": 1}) + "\n")
    with pytest.raises(DataError, match="line 4: nums must be"):
        load(path)


def test_a_broken_json_line_is_named_and_skipped_with_skip_malformed(tmp_path):
    """Was: DatasetGenerationError, or "Unexpected character ... at position 18", no row;
    and skip_malformed did not help."""
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(ROWS[0]), '{"nums": [1, 2], "target": 3', "[1, 2, 3]", json.dumps(ROWS[1]),
             '{"nums": [1, 2], "target": ' + "9" * 5000 + "}", json.dumps({"nums": "x", "target": 1})]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg and "skip_malformed" in msg
    assert "line 2: not JSON (Expecting ',' delimiter, column 29)" in msg
    assert "line 3: not a JSON object, got [1, 2, 3]" in msg and "line 5: not JSON" in msg
    loaded = load(path, skip_malformed=True)
    assert loaded.rows == ROWS and loaded.skipped == 4
    assert [m.split(":")[0] for m in loaded.errors] == ["line 2", "line 3", "line 5", "line 6"]


def test_every_line_broken_with_skip_malformed(tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text("{oops\nnot json\n")
    with pytest.raises(DataError, match=r"no usable rows .* \(all malformed\)"):
        load(path, skip_malformed=True)
    with pytest.raises(DataError, match="2 malformed row.*line 1: not JSON"):
        load(path)


def test_json_array_file_rows_count_from_one(tmp_path):
    path = tmp_path / "array.json"
    path.write_text(json.dumps(ROWS + [{"nums": [1], "target": 1}], indent=1))
    with pytest.raises(DataError, match="row 3: nums must have"):
        load(path)
    path.write_text(json.dumps(ROWS, indent=1))
    assert load(path).rows == ROWS
