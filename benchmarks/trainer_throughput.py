"""Trainer throughput and peak memory on CPU, against a plain PyTorch loop measured in the same run.

Data: HumanEvalFix (humanevalpack) as prompt = problem + buggy program, completion = the fix
(realistic lengths, ~150-400 tokens). Model: a small Llama built from a config (SmolLM2's
tokenizer, random weights; speed does not depend on the weights), or ``--model`` for any
local folder or smollm2-135m-instruct.

Ours: a whole job through the JobManager (child process, transformers Trainer, PEFT LoRA,
length-grouped batches, checkpoints, bf16 autocast where the CPU has bf16 units). Reference:
transformers' defaults (fp32) with the same PEFT model, batch size and number of optimizer steps
in a bare ``for batch in loader: loss.backward(); opt.step()`` loop, also in a child process.
Tokens are non-padding tokens. Peak memory is each child's max RSS.

Usage: .venv/bin/python benchmarks/trainer_throughput.py [--steps 30] [--batch 4] [--model NAME|PATH]
       [--precision auto|fp32]
The last line is ``ratio <our training tokens/s / reference tokens/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "humanevalfix" / "humanevalpack.jsonl"


def write_data(path: Path) -> int:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    with path.open("w") as f:
        for row in rows:
            prompt = "%s\n\nFix the bug in this program:\n%s%s\n" % (
                row["instruction"],
                row["declaration"],
                row["buggy_solution"],
            )
            f.write(json.dumps({"prompt": prompt, "completion": row["declaration"] + row["canonical_solution"]}) + "\n")
    return len(rows)


def build_model(path: Path) -> Path:
    import torch
    import transformers

    from next_common.models import SMOLLM2, packaged_gguf

    gguf = packaged_gguf(SMOLLM2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def reference(model_path: str, data: str, steps: int, batch: int, queue: Any) -> None:
    """The same work in the barest loop: PEFT model, completion-only labels, AdamW."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq

    from next_common.models import resolve_model
    from next_trainer.data import read_examples, tokenize

    torch.manual_seed(0)
    path = resolve_model(model_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    features, _ = tokenize(read_examples(data), tokenizer, 1024, "drop")
    base: Any = AutoModelForCausalLM.from_pretrained(path)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(base, lora).train()
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    dataset: Any = features
    loader: Any = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, collate_fn=collate)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    tokens, done = 0, 0
    started = time.perf_counter()
    while done < steps:
        for b in loader:
            loss = model(**b).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            tokens += int(b["attention_mask"].sum())
            done += 1
            if done == steps:
                break
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"tokens_per_s": tokens / elapsed, "elapsed_s": elapsed, "peak_rss_mb": rss_mb})


async def ours(model_path: str, data: Path, out: Path, steps: int, batch: int, precision: str) -> dict[str, float]:
    from next_trainer.job_manager import JobManager
    from nextapi.trainer.config import parse_config
    from nextapi.trainer.types import JobState

    config = parse_config(
        {
            "base_model": model_path,
            "data_path": str(data),
            "output_dir": str(out),
            "optim": {"max_steps": steps, "batch_size": batch},
            "max_length": 1024,
            "precision": precision,
            "save_steps": max(steps // 2, 1),
            "tensorboard": True,
        }
    )
    manager = JobManager()
    started = time.perf_counter()
    done = await manager.wait((await manager.start(config)).job_id)
    wall = time.perf_counter() - started
    if done.state is not JobState.SUCCEEDED:
        sys.exit("job failed: %s" % done.reason)
    metrics = json.loads((out / "next_training.json").read_text())["metrics"]
    return {
        "tokens_per_s": metrics["tokens"] / metrics["train_runtime_s"],
        "elapsed_s": metrics["train_runtime_s"],
        "wall_s": wall,
        "peak_rss_mb": metrics["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--model", default="", help="a packaged model name or local folder (default: a small llama built here)"
    )
    parser.add_argument("--precision", default="auto", help="ours: auto (bf16 where the CPU has AMX/AVX512-BF16), fp32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = write_data(root / "train.jsonl")
        model = args.model or str(build_model(root / "model"))
        print(
            "data: %d examples; model: %s; %d steps of batch %d"
            % (n, args.model or "llama 4x256", args.steps, args.batch)
        )
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=reference, args=(model, str(root / "train.jsonl"), args.steps, args.batch, queue))
        child.start()
        ref = queue.get()
        child.join()
        print(
            "reference loop: %.0f tokens/s, %.1f s, peak RSS %.0f MB"
            % (ref["tokens_per_s"], ref["elapsed_s"], ref["peak_rss_mb"])
        )
        got = asyncio.run(ours(model, root / "train.jsonl", root / "adapter", args.steps, args.batch, args.precision))
        print(
            "next-trainer job (precision %s): %.0f tokens/s, %.1f s training (%.1f s end to end), peak RSS %.0f MB"
            % (args.precision, got["tokens_per_s"], got["elapsed_s"], got["wall_s"], got["peak_rss_mb"])
        )
        print("ratio %.2f" % (got["tokens_per_s"] / ref["tokens_per_s"]))


if __name__ == "__main__":
    main()
