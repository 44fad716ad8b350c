"""A tiny model trains for real: the loss falls, only LoRA weights change, the adapter serves,
and a job killed mid-run resumes to the same adapter as an uninterrupted one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from next_trainer.events import EVENTS_FILE
from next_trainer.job_manager import JobManager
from next_trainer.publish import METADATA_FILE
from nextapi.trainer.config import parse_config
from nextapi.trainer.types import JobState
from tests.trainer.conftest import base_config, processes_of, write_data

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
from safetensors.torch import load_file  # noqa: E402


def _events(work: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (work / EVENTS_FILE).read_text().splitlines()]


async def test_tiny_model_trains_and_its_adapter_changes_the_sampler(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    base_weights = (tiny_model_dir / "model.safetensors").read_bytes()
    out = tmp_path / "adapter"
    config = parse_config(base_config(tiny_model_dir, data_file, out, optim={"learning_rate": 3e-2, "max_steps": 16}))
    manager = JobManager()
    job = await manager.start(config)
    seen = [status async for status in manager.watch(job.job_id)]
    final = seen[-1]
    assert final.state is JobState.SUCCEEDED, final.reason
    assert [s.state for s in seen][:1] == [JobState.QUEUED] and JobState.RUNNING in {s.state for s in seen}

    losses = [e["loss"] for e in _events(config.work_dir) if e["type"] == "progress"]
    assert len(losses) == 16
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1, losses  # the loss falls
    assert final.progress.step == 16 and final.progress.tokens_per_second > 0
    assert final.data is not None and final.data.kept == 16 and len(final.data.data_sha256) == 64

    # only LoRA weights were trained: the base model is untouched and the adapter holds lora_A/lora_B only
    assert (tiny_model_dir / "model.safetensors").read_bytes() == base_weights
    tensors = load_file(out / "adapter_model.safetensors")
    assert tensors and all(".lora_A." in k or ".lora_B." in k for k in tensors), sorted(tensors)[:5]
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["use_dora"] is False and not adapter_config["modules_to_save"]
    assert not any("embed" in k or "lm_head" in k for k in tensors)
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["data"]["data_sha256"] == final.data.data_sha256
    assert set(metadata["versions"]) >= {"torch", "transformers", "peft", "python"}
    assert metadata["metrics"]["steps"] == 16
    assert not (config.work_dir / "checkpoints").exists()  # published: checkpoints are no longer needed
    assert any((config.work_dir / "tensorboard").iterdir())

    # the adapter loads with PEFT and changes what the local sampler generates
    from next_sampler.backends.local_transformers import TransformersEngine
    from next_sampler.generation import SampleJob
    from nextapi.sampler.types import SamplingParams

    backend = TransformersEngine(model=str(tiny_model_dir), device="cpu")
    params = SamplingParams(max_new_tokens=8)
    jobs = [SampleJob(i, 0, p, 0) for i, p in enumerate(["def add(a, b):\n", "def last(xs):\n"])]
    before = [await backend.generate(j, params, "") for j in jobs]
    await backend.load_adapter("round-1", str(out))
    after = [await backend.generate(j, params, "round-1") for j in jobs]
    assert [g.text for g in after] != [g.text for g in before]


def _train_cli(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "next_trainer", "train", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _complete_checkpoint_at_least(work: Path, step: int) -> bool:
    for state in (work / "checkpoints").glob("checkpoint-*/trainer_state.json"):
        try:
            if json.loads(state.read_text())["global_step"] >= step:
                return True
        except (ValueError, KeyError):
            pass
    return False


def test_kill_and_resume_reaches_the_same_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_data(tmp_path / "train.jsonl", repeat=4)
    optim = {"learning_rate": 1e-2, "max_steps": 20, "batch_size": 2, "gradient_accumulation_steps": 2}
    lora = {"r": 8, "alpha": 16, "dropout": 0.1}  # dropout: the RNG state must resume too
    configs = {}
    for name in ("straight", "resumed"):
        path = tmp_path / ("%s.yaml" % name)
        raw = base_config(tiny_model_dir, data, tmp_path / name, optim=optim, lora=lora, save_steps=5)
        path.write_text(yaml.safe_dump(raw))
        configs[name] = path

    straight = _train_cli(configs["straight"])
    assert straight.wait(timeout=300) == 0, straight.stderr.read() if straight.stderr else ""

    work = tmp_path / "resumed.work"
    first = _train_cli(configs["resumed"])
    deadline = time.monotonic() + 240
    while not _complete_checkpoint_at_least(work, 10):
        assert first.poll() is None, "the job ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # the CLI dies; its training process follows it
    first.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(processes_of(work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / "resumed").exists()

    second = _train_cli(configs["resumed"])
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert b"resumed from step" in out
    started = [e for e in _events(work) if e["type"] == "started"]
    assert started[0]["resumed_from_step"] == 0 and started[-1]["resumed_from_step"] >= 10

    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


async def test_warm_start_from_a_previous_adapter(tiny_model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    manager = JobManager()
    first = parse_config(base_config(tiny_model_dir, data_file, tmp_path / "r1", optim={"max_steps": 2}))
    assert (await manager.wait((await manager.start(first)).job_id)).state is JobState.SUCCEEDED
    second = parse_config(
        base_config(
            tiny_model_dir, data_file, tmp_path / "r2", optim={"max_steps": 2}, warm_start_adapter=str(tmp_path / "r1")
        )
    )
    done = await manager.wait((await manager.start(second)).job_id)
    assert done.state is JobState.SUCCEEDED, done.reason
    a = load_file(tmp_path / "r1" / "adapter_model.safetensors")
    b = load_file(tmp_path / "r2" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


async def test_data_parallel_processes_and_a_merged_export(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    # Two processes through torchrun (gloo on CPU): each step sees 2 x 2 examples, so 6 steps are
    # 1.5 epochs of the 16 examples, where one process would be at 0.75.
    raw = base_config(tiny_model_dir, data_file, tmp_path / "ddp", processes=2, export_merged=True)
    raw["optim"] = {"max_steps": 6, "batch_size": 2}
    manager = JobManager()
    done = await manager.wait((await manager.start(parse_config(raw))).job_id)
    assert done.state is JobState.SUCCEEDED, done.reason
    assert done.progress.epoch == pytest.approx(1.5)
    merged = Path(done.merged_path)
    assert merged == tmp_path / "ddp" / "merged" and (merged / "config.json").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged)
    assert not any("lora" in name for name, _ in model.named_parameters())
