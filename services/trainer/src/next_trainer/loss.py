"""Completion-only loss that projects only the completion's positions onto the vocabulary.

The prompt (problem, buggy program, trace) is most of each example and its labels are -100, yet a
causal LM computes logits for every position: batch x length x vocabulary in fp32, plus their
gradient. For Qwen2.5's 152k-token vocabulary at batch 4 x 1536 tokens the fp32 logits are 3.7 GB
and their gradient as much again, and the output projection of prompt positions is compute spent
for nothing. The collator marks the positions whose next token is labelled; the model
(``logits_to_keep``, a boolean mask) projects only those, and the loss is the same cross-entropy
transformers computes over them.
"""

from __future__ import annotations

import inspect
from typing import Any

from next_trainer.data import IGNORE_INDEX

KEEP = "logits_to_keep"


def accepts_position_mask(model: Any) -> bool:
    """Whether the causal LM under any wrappers (PEFT) takes ``logits_to_keep`` (transformers 4.50+ models)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return KEEP in inspect.signature(inner.forward).parameters


class CompletionPositions:
    """Wraps a collator: adds the boolean (batch, length) mask of positions that predict a label."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = self.collate(features)
        labels = batch["labels"]
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        batch[KEEP] = keep
        return dict(batch)


def completion_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the kept logits (flattened in row order) against their next tokens.

    Equal to transformers' causal-LM loss: a sum over labelled tokens divided by
    ``num_items_in_batch`` (all labelled tokens of the accumulated batch) or, without it, a mean.
    """
    import torch

    shifted = labels[:, 1:]
    targets = shifted[shifted != IGNORE_INDEX].to(outputs.logits.device)
    logits = outputs.logits.float().reshape(-1, outputs.logits.shape[-1])
    if logits.shape[0] != targets.shape[0]:
        raise ValueError(
            "the model returned %d logits for %d labelled positions: does it accept a boolean %s?"
            % (logits.shape[0], targets.shape[0], KEEP)
        )
    total = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    if num_items_in_batch is None:
        return total / max(int(targets.numel()), 1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
