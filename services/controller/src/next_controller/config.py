"""A self-training run, described by one YAML file (plus ``--set key=value`` overrides).

Every key is known and every value checked before anything runs: an unknown key or an
impossible value is an error that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

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
    sampler: str = Field("", description="Remote mode: the sampler's HOST:PORT.")
    trainer: str = Field("", description="Remote mode: the trainer's HOST:PORT.")
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


@dataclass(frozen=True)
class TaskSet:
    """One task file of a run: its name (train, dev or a test set's), its key in the run file, its limit."""

    name: str
    key: str
    path: str
    limit: int


class DataConfig(_Strict):
    train: str = Field(min_length=1, description="Task JSONL (next data build-mbpp-r / build-demo).")
    dev: str = Field(min_length=1, description="Dev tasks: the best round is chosen on them.")
    test: dict[str, str] = Field(default_factory=dict, description="More evaluation sets by name (e.g. hefix-plus).")
    limit_train: int = Field(0, ge=0, description="Use only the first N training tasks (0: all).")
    limit_eval: int = Field(0, ge=0, description="Use only the first N tasks of each evaluation set (0: all).")

    def sets(self) -> list[TaskSet]:
        """Every task file the run reads, in order: train, dev, then the test sets."""
        return [
            TaskSet("train", "data.train", self.train, self.limit_train),
            TaskSet("dev", "data.dev", self.dev, self.limit_eval),
            *(TaskSet(name, "data.test.%s" % name, path, self.limit_eval) for name, path in self.test.items()),
        ]


class SamplingConfig(_Strict):
    samples_per_problem: int = Field(32, ge=1, description="Samples per hard problem in each round (paper: 32).")
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(768, ge=1, description="Tokens per sample at most (rationale and fixed program).")
    stop: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description='Strings that end a sample (not included in it), e.g. ["\\n```\\n"]: the prompt asks for one '
        "python block after the rationale, so what follows its closing fence is never graded.",
    )
    seed: int = Field(0, ge=0, description="Sample j of a prompt is drawn with seed + j.")
    shots: Literal[0, 3] = Field(0, description="3-shot exemplars for the base model's samples (round 0, hard).")
    trace_format: str = Field(
        "next-inline", description="Trace format plugin of the tracer (next-inline, scratchpad, json)."
    )


class HardProblemsConfig(_Strict):
    enabled: bool = Field(True, description="Train only on problems the base model rarely fixes (false: on all).")
    samples: int = Field(32, ge=1, description="Base-model samples per problem to estimate pass@1.")
    threshold: float = Field(0.1, gt=0, le=1, description="Keep problems whose estimated pass@1 is below this.")


class FiltersConfig(_Strict):
    names: list[str] = Field(
        default_factory=lambda: ["passes-all-tests", "no-test-tampering", "dedupe"],
        description="Filter plugins applied in order (also max-length, rationale-cites-trace).",
    )
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
    ks: list[int] = Field(default_factory=lambda: [1, 5, 10, 25], description="pass@k for each k.")
    samples: int = Field(25, ge=1, description="Samples per task for pass@k (at least max(ks) to report it).")
    temperature: float = Field(0.8, ge=0, le=2)
    with_trace: list[bool] = Field(
        default_factory=lambda: [True, False], description="Evaluate with the trace in the prompt, without, or both."
    )
    greedy: bool = Field(True, description="Also greedy pass@1.")
    metric: str = Field("pass@1/trace", description="Dev metric that picks the best round.")
    proxy: ProxyConfig = ProxyConfig()

    @model_validator(mode="after")
    def _ks(self) -> EvaluationConfig:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError("ks must be positive integers")
        return self


class RunConfig(_Strict):
    run_dir: str = Field(min_length=1, description="Where the run keeps everything; rerunning resumes from it.")
    base_model: str = Field(
        "smollm2-135m-instruct",
        description="A packaged model (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct, "
        "qwen2.5-coder-1.5b-instruct), a .gguf file, a Hugging Face folder or a hub id.",
    )
    rounds: int = Field(2, ge=1, le=100, description="Self-training rounds (sample, filter, train, evaluate).")
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


REQUIRED = ""  # what `next config defaults` writes for a key without a default


def _flow(value: Any) -> str:
    """One YAML value on one line (flow style), as ``yaml.safe_load`` reads it back."""
    text = str(yaml.safe_dump(value, default_flow_style=True, width=1 << 16, allow_unicode=True))
    return text.removesuffix("\n...\n").strip()


def _comment(field: FieldInfo) -> str:
    parts = []
    if field.is_required():
        parts.append("REQUIRED:")
    if field.description:
        parts.append(field.description)
    if get_origin(field.annotation) is Literal:
        parts.append("(one of: %s)" % " | ".join(str(a) for a in get_args(field.annotation)))
    return "  # " + " ".join(parts) if parts else ""


def _emit(model: type[BaseModel], value: BaseModel | None, indent: str, lines: list[str]) -> None:
    for name, field in model.model_fields.items():
        if value is not None:
            current = getattr(value, name)
        elif field.is_required():
            current = REQUIRED
        else:
            current = field.get_default(call_default_factory=True)
        section = field.annotation if isinstance(field.annotation, type) else None
        if section is not None and issubclass(section, BaseModel):
            doc = (section.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            note = field.description or (doc if section.__doc__ != BaseModel.__doc__ else "")
            lines.append("%s%s:%s" % (indent, name, "  # " + " ".join(note.split()) if note else ""))
            _emit(section, current if isinstance(current, BaseModel) else None, indent + "  ", lines)
        else:
            lines.append("%s%s: %s%s" % (indent, name, _flow(current), _comment(field)))


def defaults_yaml() -> str:
    """Every key of a run file with its default and what it means: ``next config defaults``."""
    lines = [
        "# A NExT run file with every key at its default (next config defaults). Fill in the keys",
        "# marked REQUIRED (run_dir, data.train, data.dev), delete what you keep at its default, then:",
        "#   next run --check run.yaml && next run run.yaml",
        "# docs/controller.md describes the keys; `training` is the trainer's own recipe (docs/trainer.md).",
    ]
    _emit(RunConfig, None, "", lines)
    return "\n".join(lines) + "\n"
