"""A self-training run, described by one YAML file (plus ``--set key=value`` overrides).

Every key is known and every value checked before anything runs: an unknown key or an
impossible value is an error that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from next_common.config_files import apply_overrides, read_mapping, validate
from nextapi.trainer.config import OptimConfig, TrainingRecipe


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServicesConfig(_Strict):
    """``embedded`` starts the three services on loopback; ``remote`` uses the given targets."""

    mode: Literal["embedded", "remote"] = "embedded"
    tracer: list[str] = Field(
        default_factory=list,
        description="Tracer targets: HOST:PORT each, or one dns:///NAME:PORT of a headless service (round robin).",
    )
    sampler: str = ""
    trainer: str = ""
    sampler_backend: str = Field("local", description="Backend name on the sampler (local, tgi, openai, replay).")
    replay_file: str = Field("", description="Embedded mode with the replay backend: its recorded completions.")
    local_engine: Literal["llamacpp", "transformers"] = Field(
        "llamacpp", description="Embedded mode with the local backend: llamacpp (GGUF, CPU-fast) or transformers."
    )
    adapter_loading: Literal["path", "preloaded"] = Field(
        "path", description="path: the sampler loads each new adapter from disk; preloaded: it already has it."
    )
    tracer_concurrency: int = Field(16, ge=1, description="Tracer RPCs in flight (backpressure on sampling).")
    rpc_retries: int = Field(5, ge=0, description="Retries of UNAVAILABLE with exponential backoff.")
    connect_timeout_s: float = Field(30.0, gt=0, description="How long to wait for each service to report SERVING.")

    @model_validator(mode="after")
    def _targets(self) -> ServicesConfig:
        if self.mode == "remote":
            missing = [n for n in ("tracer", "sampler", "trainer") if not getattr(self, n)]
            if missing:
                raise ValueError("remote mode needs targets for: %s" % ", ".join(missing))
        return self


class DataConfig(_Strict):
    train: str = Field(min_length=1, description="Task JSONL (next data build-mbpp-r / build-demo).")
    dev: str = Field(min_length=1, description="Dev tasks: the best round is chosen on them.")
    test: dict[str, str] = Field(default_factory=dict, description="More evaluation sets by name (e.g. hefix-plus).")
    limit_train: int = Field(0, ge=0, description="Use only the first N training tasks (0: all).")
    limit_eval: int = Field(0, ge=0, description="Use only the first N tasks of each evaluation set (0: all).")


class SamplingConfig(_Strict):
    samples_per_problem: int = Field(32, ge=1)
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(768, ge=1)
    stop: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description='Strings that end a sample (not included in it), e.g. ["\\n```\\n"]: the prompt asks for one '
        "python block after the rationale, so what follows its closing fence is never graded.",
    )
    seed: int = Field(0, ge=0)
    shots: Literal[0, 3] = Field(0, description="3-shot exemplars for the base model's samples (round 0, hard).")
    trace_format: str = "next-inline"


class HardProblemsConfig(_Strict):
    enabled: bool = True
    samples: int = Field(32, ge=1, description="Base-model samples per problem to estimate pass@1.")
    threshold: float = Field(0.1, gt=0, le=1, description="Keep problems whose estimated pass@1 is below this.")


class FiltersConfig(_Strict):
    names: list[str] = Field(default_factory=lambda: ["passes-all-tests", "no-test-tampering", "dedupe"])
    max_completion_chars: int = Field(6000, ge=1, description="For the max-length filter.")
    on_empty: Literal["continue", "stop"] = Field(
        "continue", description="When a round keeps nothing: skip its training and go on, or stop the run."
    )


class RunTraining(TrainingRecipe):
    """The trainer's own recipe (``nextapi.trainer.config``: lora.r, optim.learning_rate, precision, ...)
    plus how rounds chain; the run supplies the model, the data and the output of each round."""

    warm_start: bool = Field(False, description="Start each round from the previous adapter (paper: from the base).")
    optim: OptimConfig = OptimConfig(epochs=2.0)


class ProxyConfig(_Strict):
    """The paper's rationale evaluation: a second model fixes the bug from the rationale alone."""

    enabled: bool = False
    backend: str = Field("", description="Sampler backend of the proxy model (default: the run's backend).")
    samples: int = Field(4, ge=1)


class EvaluationConfig(_Strict):
    ks: list[int] = Field(default_factory=lambda: [1, 5, 10, 25])
    samples: int = Field(25, ge=1, description="Samples per task for pass@k (at least max(ks) to report it).")
    temperature: float = Field(0.8, ge=0, le=2)
    with_trace: list[bool] = Field(default_factory=lambda: [True, False])
    greedy: bool = True
    metric: str = Field("pass@1/trace", description="Dev metric that picks the best round.")
    proxy: ProxyConfig = ProxyConfig()

    @model_validator(mode="after")
    def _ks(self) -> EvaluationConfig:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError("ks must be positive integers")
        return self


class RunConfig(_Strict):
    run_dir: str = Field(min_length=1)
    base_model: str = Field("smollm2-135m-instruct", description="Hub id, local folder or smollm2-135m-instruct.")
    rounds: int = Field(2, ge=1, le=100)
    services: ServicesConfig = ServicesConfig()
    data: DataConfig
    sampling: SamplingConfig = SamplingConfig()
    hard_problems: HardProblemsConfig = HardProblemsConfig()
    filters: FiltersConfig = FiltersConfig()
    training: RunTraining = RunTraining()
    evaluation: EvaluationConfig = EvaluationConfig()
    tracer_timeout_s: float = Field(10.0, gt=0, description="Per test run in the sandbox.")

    @property
    def path(self) -> Path:
        return Path(self.run_dir)


def parse_run_config(raw: Any, where: str = "config") -> RunConfig:
    return validate(RunConfig, raw, where)


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    return parse_run_config(apply_overrides(read_mapping(path), overrides or []), str(path))


def dump_config(config: RunConfig) -> str:
    return str(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
