"""Completion parsing: fences, fallbacks, truncation; failures are outcomes."""

from __future__ import annotations

from next_tasks.parsing import parse_completion

FIXED = "def add(a, b):\n    return a + b\n"


def test_last_fenced_block_that_defines_the_entry_point() -> None:
    text = (
        "The function should add. At (1) the trace shows 1 - 2 = -1 against 3.\n"
        "```python\nadd(1, 2)\n```\nHere is a fixed version:\n```python\n" + FIXED + "```\nDone."
    )
    parsed = parse_completion(text, "add")
    assert parsed.ok and parsed.program == FIXED and parsed.method == "fenced"
    assert parsed.rationale.startswith("The function should add.") and parsed.rationale.endswith("fixed version:")


def test_truncated_generation_with_an_open_fence() -> None:
    text = "Reasoning.\nHere is a fixed version:\n```python\n" + FIXED + "\ndef helper(x):\n    return x +"
    parsed = parse_completion(text, "add")
    assert parsed.ok and parsed.method == "unterminated-fence" and parsed.program == FIXED
    assert parsed.rationale == "Reasoning.\nHere is a fixed version:"


def test_missing_fences_and_trailing_text() -> None:
    text = "The bug is the minus sign.\nHere is a fixed version:\nimport math\n" + FIXED + "This should now pass."
    parsed = parse_completion(text, "add")
    assert parsed.ok and parsed.method == "unfenced"
    assert parsed.program == "import math\n" + FIXED
    assert parsed.rationale == "The bug is the minus sign.\nHere is a fixed version:"


def test_failures_are_outcomes() -> None:
    assert parse_completion("I cannot fix this.", "add").error == "no code block found"
    wrong = parse_completion("```python\ndef sub(a, b):\n    return a - b\n```", "add")
    assert not wrong.ok and wrong.error == "the code does not define 'add'"
    broken = parse_completion("```python\ndef add(a, b)\n    return a + b\n```", "add")
    assert not broken.ok and "does not parse" in broken.error
    assert parse_completion("", "add").method == "none"
