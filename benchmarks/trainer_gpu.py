"""Trainer speed on a GPU: a Qwen2-0.5B-shaped model built from a config (random weights; no
weights can be downloaded on the GPU machine and speed does not depend on them), trained with
our job runner at a realistic sequence length. Prints tokens/s, peak GPU memory and model
FLOPs utilisation. Installs nothing and needs no network.

MFU uses the usual model-FLOPs count per token, 6 * N + 12 * layers * hidden * seq (PaLM,
appendix B), against the card's dense bf16 peak. LoRA skips the weight gradients of frozen
layers, so the work actually needed is nearer 4 * N + ...; both are printed.

Usage: python benchmarks/trainer_gpu.py [--steps 30] [--batch 8] [--seq 1024] [--smoke]
(``--smoke``: a tiny model on CPU, to check the script itself where no GPU is lent.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Dense bf16 peak FLOP/s by card name (vendor data sheets, SXM parts without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 125e12}

WORDS = "def return if else for while in range len append list dict value index result total count".split()


def synthetic_code(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        indent = "    " * rng.randint(0, 3)
        out.append(indent + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + " x%d = %d" % (i, i * 7))
    return "\n".join(out) + "\n"


def build(root: Path, smoke: bool, seq: int, count: int) -> tuple[Path, Path, int, dict[str, int]]:
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = random.Random(0)
    corpus = [synthetic_code(rng, 40) for _ in range(200)]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<unk>", "<|endoftext|>"]))
    fast: Any = transformers.PreTrainedTokenizerFast
    tokenizer = fast(tokenizer_object=bpe, eos_token="<|endoftext|>", unk_token="<unk>")
    shape = (
        {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
        if smoke
        else {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14}
    )
    qwen2: Any = transformers.Qwen2Config
    config = qwen2(
        vocab_size=8000 if smoke else 151936,
        num_key_value_heads=2,
        max_position_embeddings=max(seq, 2048),
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    # Examples of about `seq` tokens: 70% prompt (buggy program), 30% completion (the fix).
    data = root / "train.jsonl"
    with data.open("w") as f:
        for _ in range(count):
            prompt, completion = synthetic_code(rng, 10), synthetic_code(rng, 5)
            while len(tokenizer(prompt)["input_ids"]) < int(seq * 0.68):
                prompt += synthetic_code(rng, 5)
            while len(tokenizer(completion)["input_ids"]) < int(seq * 0.28):
                completion += synthetic_code(rng, 3)
            f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
    return root / "model", data, params, shape


async def run_job(
    model: Path, data: Path, out: Path, steps: int, batch: int, seq: int, smoke: bool
) -> dict[str, float]:
    from next_trainer.job_manager import JobManager
    from nextapi.trainer.config import parse_config
    from nextapi.trainer.types import JobState

    config = parse_config(
        {
            "base_model": str(model),
            "data_path": str(data),
            "output_dir": str(out),
            "optim": {"max_steps": steps, "batch_size": batch},
            "max_length": seq,
            "overlong": "truncate",
            "save_steps": steps,  # one checkpoint, at the end
            "precision": "fp32" if smoke else "bf16",
        }
    )
    manager = JobManager()
    started = time.perf_counter()
    done = await manager.wait((await manager.start(config)).job_id)
    if done.state is not JobState.SUCCEEDED:
        sys.exit("job failed: %s" % done.reason)
    metrics: dict[str, float] = json.loads((out / "next_training.json").read_text())["metrics"]
    metrics["wall_s"] = time.perf_counter() - started
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    import torch

    if not args.smoke and not torch.cuda.is_available():
        sys.exit("no GPU here (use --smoke to check the script on CPU)")
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, data, params, shape = build(root, args.smoke, args.seq, count=args.steps * args.batch)
        m = asyncio.run(run_job(model, data, root / "adapter", args.steps, args.batch, args.seq, args.smoke))
    tokens_per_s = m["tokens"] / m["train_runtime_s"]
    layers, hidden = shape["num_hidden_layers"], shape["hidden_size"]
    attention = 12 * layers * hidden * args.seq
    peak = next((v for k, v in PEAK_BF16.items() if k in card), 0.0)
    print("| card | params | seq | batch | tokens/s | peak GPU MB | MFU (6N) | MFU (4N, LoRA) |")
    print("|---|---|---|---|---|---|---|---|")
    mfu6 = "%.1f%%" % (100 * tokens_per_s * (6 * params + attention) / peak) if peak else "n/a"
    mfu4 = "%.1f%%" % (100 * tokens_per_s * (4 * params + attention) / peak) if peak else "n/a"
    print(
        "| %s | %.0fM | %d | %d | %.0f | %.0f | %s | %s |"
        % (card, params / 1e6, args.seq, args.batch, tokens_per_s, m["peak_gpu_mb"], mfu6, mfu4)
    )
    print("steps %d, training %.1f s, job end to end %.1f s" % (m["steps"], m["train_runtime_s"], m["wall_s"]))


if __name__ == "__main__":
    main()
