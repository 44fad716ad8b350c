"""Length-grouped batches whose order depends only on (seed, epoch).

transformers' LengthGroupedSampler draws from the global RNG when it is iterated, so a job
resumed mid-epoch would see its examples in another order than an uninterrupted one. Seeding
a private generator per epoch (the Trainer calls ``set_epoch``) makes resume exact.
"""

from __future__ import annotations

from typing import Any


def length_grouped_trainer(base: Any, seed: int) -> Any:
    """A subclass of the Trainer class ``base`` that groups by length reproducibly."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
        def set_epoch(self, epoch: int) -> None:
            self.generator = torch.Generator().manual_seed(seed + epoch)

    class ReproducibleTrainer(base):  # type: ignore[misc]
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            sampler = EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                dataset=dataset,
                model_input_name="input_ids",
            )
            sampler.set_epoch(0)
            return sampler

    return ReproducibleTrainer
