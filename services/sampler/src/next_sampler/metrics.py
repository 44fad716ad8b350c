"""Prometheus metrics of the sampler."""

from prometheus_client import Counter, Gauge, Histogram

COMPLETIONS = Counter("next_sampler_completions_total", "Completions returned", ["backend", "finish_reason"])
TOKENS = Counter("next_sampler_completion_tokens_total", "Generated tokens", ["backend"])
REQUESTS = Counter("next_sampler_requests_total", "Sample requests", ["backend"])
LATENCY = Histogram(
    "next_sampler_generation_seconds",
    "Wall time of one generation",
    ["backend"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
IN_FLIGHT = Gauge("next_sampler_generations_in_flight", "Generations in progress")
