"""The request log read by columns, in pieces: the same requests as reading it row by row, whatever its size."""

import csv
import random
from collections import Counter

import numpy as np
import pytest

from runbook.load import runner

from runbook.analysis import results
from runbook.analysis.results import read_request_log

HEADER = ["time", "service", "side", "round", "response_ms", "ok", "error"]


def write_log(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)


def by_rows(path, compared):
    """The reference: the csv module, one row at a time."""
    found, errors = {}, {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["service"], row["side"] or "candidate")
            measured = not compared or row["round"] != "0"
            found.setdefault(key, []).append((float(row["time"]), float(row["response_ms"]), row["ok"] == "1", measured))
            if row["ok"] != "1" and measured:
                errors.setdefault(key, Counter())[row["error"]] += 1
    return {key: sorted(rows, key=lambda r: r[0]) for key, rows in found.items()}, errors


@pytest.mark.parametrize("compared", [True, False])
def test_pieces_and_workers_parts_read_as_row_by_row(tmp_path, monkeypatch, compared):
    monkeypatch.setattr(results, "READ_PIECE_BYTES", 997)  # many pieces, each cut mid-line
    rng = random.Random(5)
    parts = []
    for worker in range(3):  # each worker's part in time order, the parts one after another
        t = 1000.0 + worker * 0.001
        part = []
        for _ in range(400):
            t += rng.random() * 0.05
            ok = rng.random() > 0.1
            error = "" if ok else rng.choice(['HTTP 503', 'body does not contain "foo", got: a,b', "ConnectionRefusedError: x",
                                              "ConnectionError: line one\r\nline two\nand \"three\""])
            part.append([f"{t:.4f}", rng.choice(["foo", "bar"]), rng.choice(["candidate", "baseline"]),
                         int(t > 1005), f"{rng.random() * 20:.3f}", int(ok), error])
        parts += part
    log = tmp_path / "requests.csv"
    write_log(log, parts)
    expected, expected_errors = by_rows(log, compared)
    found, errors = read_request_log(log, compared)
    assert set(found) == set(expected) == {(s, side) for s in ("foo", "bar") for side in ("candidate", "baseline")}
    for key, rows in expected.items():
        got = found[key]
        assert got.t.tolist() == [r[0] for r in rows] and np.all(np.diff(got.t) >= 0)
        assert got.latency_ms.tolist() == [r[1] for r in rows]
        assert got.ok.tolist() == [r[2] for r in rows] and got.measured.tolist() == [r[3] for r in rows]
    assert errors == expected_errors and any('"foo", got: a,b' in e for c in errors.values() for e in c)
    assert any("line one\r\nline two" in e for c in errors.values() for e in c)


def test_a_log_without_sides_or_rounds_is_all_candidate_and_measured(tmp_path):
    log = tmp_path / "requests.csv"
    log.write_text("time,service,response_ms,ok,error\n1.0,foo,2.5,1,\n2.0,foo,3.5,0,boom\n1.5,bar,1.0,1,\n")
    found, errors = read_request_log(log, compared=True)
    assert sorted(found) == [("bar", "candidate"), ("foo", "candidate")]
    assert found[("foo", "candidate")].measured.all() and found[("foo", "candidate")].latency_ms.tolist() == [2.5, 3.5]
    assert errors == {("foo", "candidate"): Counter({"boom": 1})}


def test_a_log_with_only_its_header_has_no_requests(tmp_path):
    log = tmp_path / "requests.csv"
    write_log(log, [])
    assert read_request_log(log, compared=False) == ({}, {})
    assert runner._count(log) == (0, 0)


def test_the_load_tests_count_reads_the_ok_column(tmp_path):
    log = tmp_path / "requests.csv"
    write_log(log, [["1.0", "foo", "candidate", "1", "2.0", "1", ""], ["1.1", "foo", "candidate", "1", "2.0", "0", "x, y"],
                    ["1.2", "bar", "baseline", "0", "2.0", "1", ""]])
    assert runner._count(log) == (3, 1)
