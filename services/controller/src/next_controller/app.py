"""Running a whole self-training run: the model's tokenizer, the services, Algorithm 1."""

from __future__ import annotations

import logging
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.metrics import serve_metrics
from next_common.models import check_model_exists, resolve_model
from next_controller.algorithm import Run
from next_controller.config import RunConfig
from next_controller.services import Services
from next_controller.settings import ControllerSettings

log = logging.getLogger(__name__)


def load_tokenizer(base_model: str) -> Any:
    """The base model's tokenizer: prompts are rendered with its chat template, as the sampler sees them."""
    from transformers import AutoTokenizer

    check_model_exists(base_model)
    try:
        return AutoTokenizer.from_pretrained(resolve_model(base_model))  # converts SmolLM2 once, before the services
    except OSError as exc:
        raise InvalidArgumentError("base_model %r: cannot load its tokenizer: %s" % (base_model, exc)) from None


async def run(config: RunConfig, progress: bool = True) -> dict[str, Any]:
    metrics_port = ControllerSettings().metrics_port
    if metrics_port:  # `next run` as a Kubernetes Job; `next serve` already serves them on this port
        serve_metrics(metrics_port)
    tokenizer = load_tokenizer(config.base_model)
    config.path.mkdir(parents=True, exist_ok=True)
    async with Services.open(config, str(config.path.absolute() / "logs")) as services:
        return await Run(config, services, tokenizer, progress).execute()
