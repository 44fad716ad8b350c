"""The completion-only loss equals transformers' causal-LM loss, value and gradients, on a real tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from next_trainer.data import read_examples, tokenize
from next_trainer.loss import KEEP, CompletionPositions, accepts_position_mask, completion_loss

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def _batch_and_model(model_dir: Path, data_file: Path) -> tuple[dict[str, object], object]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    features, _ = tokenize(read_examples(str(data_file)), tokenizer, 64, "drop")
    collate = CompletionPositions(transformers.DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    batch = collate(features[:5])  # different lengths: padding on the right of some rows
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    lora = peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"]
    )
    return batch, peft.get_peft_model(model, lora)


@pytest.mark.parametrize("num_items", [None, 37])
def test_equals_transformers_loss_and_gradients(tiny_model_dir: Path, data_file: Path, num_items: int | None) -> None:
    batch, model = _batch_and_model(tiny_model_dir, data_file)
    assert accepts_position_mask(model)
    labels = batch["labels"]
    keep = batch[KEEP]
    assert int(keep.sum()) == int((labels[:, 1:] != -100).sum()) > 0

    extra = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels, **extra).loss
    reference.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    assert outputs.logits.shape[0] == int(keep.sum())  # only the completion's positions were projected
    ours = completion_loss(outputs, labels, None if num_items is None else torch.tensor(num_items))
    ours.backward()

    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.allclose(param.grad, want[name], rtol=1e-4, atol=1e-7), name


def test_a_model_that_returns_every_position_is_an_error(tiny_model_dir: Path, data_file: Path) -> None:
    batch, model = _batch_and_model(tiny_model_dir, data_file)
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    with pytest.raises(ValueError, match="logits for"):
        completion_loss(outputs, batch["labels"])
