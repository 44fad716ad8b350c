"""pass@k (the unbiased estimator of Chen et al. 2021) with bootstrap confidence intervals."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or k < 1:
        raise ValueError("need 0 <= c <= n and k >= 1 (got n=%d, c=%d, k=%d)" % (n, c, k))
    if k > n:
        raise ValueError("pass@%d needs at least %d samples per task, got %d" % (k, k, n))
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    tasks: int


def mean_pass_at_k(
    counts: Mapping[str, tuple[int, int]], k: int, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean pass@k over tasks (``task_id -> (samples, correct)``), with a bootstrap interval over tasks."""
    per_task = [pass_at_k(n, c, k) for n, c in counts.values()]
    if not per_task:
        raise ValueError("no tasks to score")
    return _bootstrap_mean(per_task, bootstrap, confidence, seed)


def paired_difference(
    before: Mapping[str, tuple[int, int]],
    after: Mapping[str, tuple[int, int]],
    k: int = 1,
    bootstrap: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean over tasks of pass@k(after) - pass@k(before), with a paired bootstrap interval over tasks.

    Pairing by task removes the spread between easy and hard tasks, which both models share:
    the interval is that of the change, not of two independent means.
    """
    if set(before) != set(after):
        only = sorted(set(before) ^ set(after))
        raise ValueError(
            "paired comparison needs the same tasks on both sides; %d differ, e.g. %s" % (len(only), only[0])
        )
    if not before:
        raise ValueError("no tasks to score")
    deltas = [pass_at_k(*after[t], k) - pass_at_k(*before[t], k) for t in sorted(before)]
    return _bootstrap_mean(deltas, bootstrap, confidence, seed)


def _bootstrap_mean(values: Sequence[float], bootstrap: int, confidence: float, seed: int) -> Estimate:
    """The mean of ``values`` with a percentile bootstrap interval (resampling the values)."""
    value = sum(values) / len(values)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(bootstrap))
    tail = (1.0 - confidence) / 2
    low = means[int(tail * (bootstrap - 1))] if bootstrap else value
    high = means[int((1 - tail) * (bootstrap - 1))] if bootstrap else value
    return Estimate(value, low, high, len(values))


def greedy_pass_at_1(results: Mapping[str, bool]) -> float:
    """Fraction of tasks whose single greedy sample passed."""
    if not results:
        raise ValueError("no tasks to score")
    return sum(results.values()) / len(results)


def scores(counts: Mapping[str, tuple[int, int]], ks: Sequence[int] = (1, 5, 10, 25)) -> dict[int, Estimate]:
    """pass@k for every k that every task has enough samples for."""
    fewest = min(n for n, _ in counts.values())
    return {k: mean_pass_at_k(counts, k) for k in ks if k <= fewest}
