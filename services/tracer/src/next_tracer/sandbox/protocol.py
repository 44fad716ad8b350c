"""What the harness reports, folded into ``JobRecords``, and how much of it is accepted.

A one-shot jail's harness writes lines on its stdout: ``R<index> <duration> <value>`` for a
returned value, a JSON message otherwise. A pre-warmed jail's relay frames them: ``J<len>``
followed by ``len`` bytes of the job process's output (lines may span frames), and ``Z{...}``
for its own control messages, which a job cannot forge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from next_tracer.runtime.wire import LineSplitter
from next_tracer.sandbox.records import JobRecords
from nextapi.tracer.verdicts import Verdict

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 512 * 1024 * 1024
STREAM_LINE_LIMIT = 256 * 1024 * 1024


async def read_lines(stdout: asyncio.StreamReader, records: JobRecords, report_bytes: int) -> None:
    """Fold a one-shot harness's lines into ``records`` until it ends, stops or sends too much."""
    total = 0
    while True:
        line = await stdout.readline()
        if not line:
            return
        total += len(line)
        if total > report_bytes:
            _over_report(records, report_bytes)
            return
        if not record_line(records, line.removesuffix(b"\n")):
            return


async def read_control(stdout: asyncio.StreamReader) -> dict[str, Any]:
    """Next control line from a worker jail's relay (frames of job output are skipped)."""
    while True:
        line = await stdout.readline()
        if not line:
            raise EOFError("worker jail exited")
        if line.startswith(b"Z"):
            msg: dict[str, Any] = json.loads(line[1:])
            return msg
        if line.startswith(b"J"):
            await stdout.readexactly(int(line[1:]))


async def read_job_frames(stdout: asyncio.StreamReader, records: JobRecords, report_bytes: int) -> bool:
    """Fold one job's frames into ``records``; True when the relay then says the jail is idle.

    A frame's size counts against ``report_bytes`` before its bytes are read.
    """
    total = 0
    lines = LineSplitter()
    while True:
        line = await stdout.readline()
        if not line:
            raise EOFError("worker jail exited during the job")
        if line.startswith(b"Z"):
            tail = lines.rest()
            if tail and not record_line(records, tail):
                return False
            return bool(json.loads(line[1:]).get("idle"))
        if not line.startswith(b"J"):
            raise ValueError("worker jail sent an unframed line")
        size = int(line[1:])
        total += size
        if total > report_bytes:
            _over_report(records, report_bytes)
            return False
        for job_line in lines.feed(await stdout.readexactly(size)):
            if not record_line(records, job_line):
                return False


def _over_report(records: JobRecords, report_bytes: int) -> None:
    records.failure = "the execution reported more than %d bytes (output limit)" % report_bytes
    records.limit_hit = Verdict.OUTPUT_LIMIT


def record_line(records: JobRecords, line: bytes) -> bool:
    """Fold one harness line into ``records``; False once the job is over.

    ``R<index> <duration> <value>`` carries a returned value, kept unparsed (and uncopied) here
    and decoded (and validated) by the engine; every other line is one JSON message.
    """
    if line.startswith(b"R"):
        # The value stays inside its line (``value_at`` is where it starts): values can be
        # hundreds of MB, and most are only compared with an expected encoding.
        first = line.index(b" ")
        at = line.index(b" ", first + 1) + 1
        records.tests[int(line[1:first])] = {
            "status": "RETURNED",
            "message": "",
            "duration_s": float(line[first + 1 : at - 1]),
            "line": line,
            "value_at": at,
        }
        return True
    return record_message(records, json.loads(line))


def record_message(records: JobRecords, msg: dict[str, Any]) -> bool:
    """Fold one harness message into ``records``; False once the job is over."""
    if "test" in msg:
        records.tests[int(msg["test"])] = msg
    elif "events" in msg:
        records.events.extend(msg["events"])
    elif "output" in msg:
        if len(records.output) < 4096:
            records.output += msg["output"][: 4096 - len(records.output)]
    elif "done" in msg:
        records.done = True
    elif "harness_error" in msg:
        log.error("sandbox harness failed: %s", msg["harness_error"])
        records.failure = "sandbox harness failed"
        return False
    return True
