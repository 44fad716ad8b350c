"""The server's side of the harness protocol: frames of any size become the same lines, and a
returned value is found inside its line without being copied out."""

from __future__ import annotations

import random

import pytest

from next_tracer.runtime.wire import LineSplitter
from next_tracer.sandbox.protocol import record_line
from next_tracer.sandbox.records import JobRecords

LINES = [b"R0 0.000100 " + b"7" * 3_000_000, b'{"test":1,"status":"PASSED"}', b"", b"R2 0.5 [1,2]", b"x" * 70_000]


@pytest.mark.parametrize("seed", range(20))
def test_frames_of_any_size_give_the_same_lines(seed: int) -> None:
    rng = random.Random(seed)
    stream = b"\n".join(LINES) + b"\ntail without newline"
    splitter, got, at = LineSplitter(), [], 0
    while at < len(stream):
        size = rng.choice([1, 2, 7, 4096, 1 << 20, 5 << 20])
        got += splitter.feed(stream[at : at + size])
        at += size
    assert got == LINES
    assert splitter.rest() == b"tail without newline"
    assert splitter.rest() == b""


def test_a_returned_value_is_located_in_its_line() -> None:
    records = JobRecords()
    line = b"R12 0.250000 " + b'{"$tuple":[1," two "]}'
    assert record_line(records, line)
    record = records.tests[12]
    assert record["status"] == "RETURNED" and record["duration_s"] == 0.25
    assert record["line"] is line  # not copied
    assert line[record["value_at"] :] == b'{"$tuple":[1," two "]}'


def test_a_malformed_returned_value_line_is_refused() -> None:
    with pytest.raises(ValueError):
        record_line(JobRecords(), b"R12")
