"""One training job, run as its own process: ``python -m next_trainer.worker CONFIG_JSON``.

Started by the job manager (or by ``torchrun`` with the same arguments for data parallelism),
so a crash or an out-of-memory kill ends this process only and frees its memory. Rank 0
reports progress as events and publishes the adapter; every rank trains.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError, NextError
from next_common.files import sha256_file
from next_common.models import resolve_model
from next_common.process import die_with_named_parent
from next_trainer.checkpoints import last_complete_checkpoint
from next_trainer.data import IGNORE_INDEX, read_examples, tokenize
from next_trainer.events import EventWriter
from next_trainer.loss import CompletionPositions, accepts_position_mask, completion_loss
from next_trainer.publish import discard, publish, staging_dir
from next_trainer.sampling import length_grouped_trainer
from nextapi.trainer.config import TrainingConfig, parse_config

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _cpu_bf16(torch: Any) -> bool:
    # bf16 autocast pays on CPUs with bf16 matrix units (AMX, AVX512-BF16): 2-2.5x fp32 here;
    # elsewhere it is emulated and slower than fp32.
    cpu = torch.cpu
    return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())


def _precision(config: TrainingConfig, torch: Any) -> dict[str, bool]:
    cuda = torch.cuda.is_available()
    wanted = config.precision
    if wanted == "auto":
        if cuda:
            wanted = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        else:
            wanted = "bf16" if _cpu_bf16(torch) else "fp32"
    if wanted == "fp16" and not cuda:
        raise InvalidArgumentError("precision fp16 needs a GPU; this machine has none (use bf16, fp32 or auto)")
    return {"bf16": wanted == "bf16", "fp16": wanted == "fp16"}


def _progress_callback(events: EventWriter | None, started: float) -> Any:
    from transformers import TrainerCallback

    class ProgressReporter(TrainerCallback):
        """Turns the Trainer's logs into progress events with throughput and ETA."""

        def __init__(self) -> None:
            self.first_step = 0
            self.t0 = started
            self.tokens0 = 0
            self.last = (started, 0)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.first_step = state.global_step
            self.t0 = time.monotonic()
            self.tokens0 = state.num_input_tokens_seen
            self.last = (self.t0, self.tokens0)
            if events:
                events.write("started", resumed_from_step=state.global_step, total_steps=state.max_steps)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not events or not logs or "loss" not in logs:
                return
            now = time.monotonic()
            done = state.global_step - self.first_step
            per_step = (now - self.t0) / done if done else 0.0
            then, tokens_then = self.last
            tokens_per_s = (state.num_input_tokens_seen - tokens_then) / (now - then) if now > then else 0.0
            self.last = (now, state.num_input_tokens_seen)
            events.write(
                "progress",
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=float(state.epoch or 0.0),
                loss=float(logs["loss"]),
                learning_rate=float(logs.get("learning_rate", 0.0)),
                tokens_per_second=tokens_per_s,
                eta_seconds=per_step * (state.max_steps - state.global_step),
                elapsed_seconds=now - started,
            )

    return ProgressReporter()


def _lora_model(config: TrainingConfig, model: Any) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.warm_start_adapter:
        if not (Path(config.warm_start_adapter) / "adapter_config.json").is_file():
            raise InvalidArgumentError("warm_start_adapter %s: no adapter_config.json" % config.warm_start_adapter)
        return PeftModel.from_pretrained(model, config.warm_start_adapter, is_trainable=True)
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
        use_dora=False,
        modules_to_save=None,
    )
    return get_peft_model(model, lora)


def _versions() -> dict[str, str]:
    names = ("torch", "transformers", "peft", "accelerate", "next-trainer")
    found = {name: version(name) for name in names}
    found["python"] = platform.python_version()
    return found


def train(config: TrainingConfig, events: EventWriter | None) -> dict[str, Any]:
    """Train and publish; ``events`` is rank 0's progress channel (None on other ranks)."""
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.integrations.integration_utils import TensorBoardCallback

    started = time.monotonic()
    work = config.work_dir
    output = Path(config.output_dir)
    staged = staging_dir(output)
    main = events is not None
    if main:
        discard(staged)  # left by a job killed while publishing
    set_seed(config.seed)
    precision = _precision(config, torch)

    model_path = resolve_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples = read_examples(config.data_path)
    features, report = tokenize(examples, tokenizer, config.max_length, config.overlong)
    report.data_sha256 = sha256_file(config.data_path)
    if events:
        events.write("data", **report.as_dict())
    if not features:
        raise InvalidArgumentError(
            "all %d examples are longer than max_length=%d tokens; nothing to train on"
            % (report.examples, config.max_length)
        )

    dtype = torch.bfloat16 if precision["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model = _lora_model(config, model)

    args = TrainingArguments(
        output_dir=str(work / CHECKPOINTS),
        per_device_train_batch_size=config.optim.batch_size,
        gradient_accumulation_steps=config.optim.gradient_accumulation_steps,
        learning_rate=config.optim.learning_rate,
        num_train_epochs=config.optim.epochs,
        max_steps=config.optim.max_steps or -1,
        lr_scheduler_type=config.optim.lr_scheduler,
        warmup_steps=config.optim.warmup_ratio,
        weight_decay=config.optim.weight_decay,
        max_grad_norm=config.optim.max_grad_norm,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.keep_checkpoints,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="random" if config.batching == "group_by_length" else config.batching,
        include_num_input_tokens_seen="non_padding",
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if _world_size() > 1 and not torch.cuda.is_available() else None,
        fsdp="full_shard auto_wrap" if config.fsdp else "",
        fsdp_config={"use_orig_params": False, "cpu_ram_efficient_loading": True} if config.fsdp else None,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        bf16=precision["bf16"],
        fp16=precision["fp16"],
    )
    callbacks = [_progress_callback(events, started)]
    if config.tensorboard and main:
        writer = SummaryWriter(log_dir=str(work / TENSORBOARD))
        callbacks.append(TensorBoardCallback(tb_writer=writer))  # type: ignore[no-untyped-call]
    trainer_class = length_grouped_trainer(Trainer, config.seed) if config.batching == "group_by_length" else Trainer
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
    completion_only = accepts_position_mask(model)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=features,
        data_collator=CompletionPositions(collate) if completion_only else collate,
        compute_loss_func=completion_loss if completion_only else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    checkpoint = last_complete_checkpoint(work / CHECKPOINTS)
    resumed_from = int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(staged))
    summary = {
        "adapter_path": str(output),
        "merged_path": "",
        "resumed_from_step": resumed_from,
        "final_loss": _last_loss(trainer.state.log_history),
        "steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics.get("train_runtime", 0.0)),
        "tokens": int(trainer.state.num_input_tokens_seen),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
    }
    if main:
        if config.export_merged:
            merged = model.merge_and_unload()  # returns a new model; not in place
            merged.save_pretrained(str(staged / "merged"), safe_serialization=True)
            tokenizer.save_pretrained(str(staged / "merged"))
            summary["merged_path"] = str(output / "merged")
        metadata = {
            "config": config.model_dump(mode="json"),
            "base_model_path": str(model_path),
            "data": report.as_dict(),
            "metrics": summary,
            "versions": _versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        publish(staged, output, metadata)
        _remove_checkpoints(work / CHECKPOINTS)
    return summary


def _last_loss(history: list[dict[str, Any]]) -> float:
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return float(losses[-1]) if losses else 0.0


def _remove_checkpoints(path: Path) -> None:
    import shutil

    # The adapter is published; checkpoints only served a resume that can no longer happen.
    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_named_parent()  # a job must not outlive the server or CLI that runs it (it resumes instead)
    if len(argv) != 1:
        print("usage: python -m next_trainer.worker CONFIG_JSON", file=sys.stderr)
        return 2
    config_path = Path(argv[0])
    config = parse_config(json.loads(config_path.read_text(encoding="utf-8")), str(config_path))
    config.work_dir.mkdir(parents=True, exist_ok=True)
    events = EventWriter(config.work_dir) if _rank() == 0 else None
    try:
        summary = train(config, events)
    except NextError as exc:
        if events:
            events.write("failed", reason=str(exc))
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except BaseException as exc:  # the reason must reach the caller, whatever it was
        traceback.print_exc()
        if events:
            events.write("failed", reason="%s: %s" % (type(exc).__name__, exc))
        return 1
    if events:
        events.write("succeeded", **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
