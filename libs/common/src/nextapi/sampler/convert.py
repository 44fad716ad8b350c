"""The sampler's domain types to and from its protos: the one mapping the servicer and the client share."""

from __future__ import annotations

from nextapi.sampler.types import Activation, Completion, SamplingParams
from nextapi.sampler.v1 import sampler_service_pb2 as pb

DEFAULT_MAX_NEW_TOKENS = 512


def params_from_proto(p: pb.SamplingParams) -> SamplingParams:
    """Zero values mean the defaults."""
    return SamplingParams(
        n=p.n or 1,
        temperature=p.temperature,
        top_p=p.top_p or 1.0,
        max_new_tokens=p.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        stop=tuple(p.stop),
        seed=p.seed,
    )


def params_to_proto(p: SamplingParams) -> pb.SamplingParams:
    return pb.SamplingParams(
        n=p.n, temperature=p.temperature, top_p=p.top_p, max_new_tokens=p.max_new_tokens, stop=list(p.stop), seed=p.seed
    )


def completion_to_proto(c: Completion) -> pb.Completion:
    return pb.Completion(
        prompt_index=c.prompt_index,
        sample_index=c.sample_index,
        text=c.text,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        finish_reason=c.finish_reason,
        adapter=c.adapter,
        seed=c.seed,
    )


def completion_from_proto(c: pb.Completion) -> Completion:
    return Completion(
        c.prompt_index, c.sample_index, c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason, c.adapter, c.seed
    )


def activation_to_proto(a: Activation) -> pb.ActivateAdapterResponse:
    return pb.ActivateAdapterResponse(
        verified=a.verified, base_output=a.base_output, adapter_output=a.adapter_output, message=a.message
    )


def activation_from_proto(r: pb.ActivateAdapterResponse) -> Activation:
    return Activation(r.verified, r.base_output, r.adapter_output, r.message)
