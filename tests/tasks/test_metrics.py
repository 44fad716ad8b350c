"""pass@k against hand-computed values; bootstrap intervals; greedy pass@1."""

from __future__ import annotations

import pytest

from next_tasks.metrics import greedy_pass_at_1, mean_pass_at_k, paired_difference, pass_at_k, scores


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 0, 1, 0.0),
        (10, 10, 5, 1.0),
        (10, 3, 1, 0.3),  # c/n
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (32, 1, 25, 25 / 32),  # 1 - C(31,25)/C(32,25) = 25/32
        (4, 1, 4, 1.0),
        (6, 2, 3, 1 - 4 / 20),  # 1 - C(4,3)/C(6,3)
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_mean_and_interval() -> None:
    counts = {"a": (10, 10), "b": (10, 0), "c": (10, 5), "d": (10, 5)}
    est = mean_pass_at_k(counts, 1, bootstrap=2000)
    assert est.value == pytest.approx(0.5) and est.tasks == 4
    assert 0.0 <= est.low < 0.5 < est.high <= 1.0
    assert set(scores(counts)) == {1, 5, 10}  # 25 needs 25 samples per task


def test_a_paired_difference_is_tighter_than_two_separate_intervals() -> None:
    # Half the tasks are easy for both models, half hard for both; the second model fixes one
    # more sample out of 8 on every task. Unpaired, the easy/hard spread swamps the change.
    before = {"t%d" % i: (8, 6 if i % 2 else 0) for i in range(40)}
    after = {t: (n, c + 1) for t, (n, c) in before.items()}
    change = paired_difference(before, after, bootstrap=2000)
    assert change.value == pytest.approx(0.125) and change.low == change.high == pytest.approx(0.125)
    a, b = mean_pass_at_k(before, 1), mean_pass_at_k(after, 1)
    assert a.high > b.low  # the two intervals overlap, the paired one excludes 0
    mixed = {t: (n, c + (1 if i % 4 else -1 if c else 0)) for i, (t, (n, c)) in enumerate(before.items())}
    est = paired_difference(before, mixed, bootstrap=2000)
    assert est.low < est.value < est.high and est.tasks == 40
    assert paired_difference(before, before).value == 0.0


def test_a_paired_difference_needs_the_same_tasks() -> None:
    with pytest.raises(ValueError, match=r"same tasks on both sides; 1 differ, e\.g\. c"):
        paired_difference({"a": (4, 1), "c": (4, 0)}, {"a": (4, 2)})
    with pytest.raises(ValueError, match="no tasks"):
        paired_difference({}, {})


def test_greedy() -> None:
    assert greedy_pass_at_1({"a": True, "b": False, "c": True, "d": True}) == 0.75
