"""Prometheus metrics of the tracer."""

from prometheus_client import Counter, Gauge, Histogram

EXECUTIONS = Counter("next_tracer_executions_total", "Sandboxed executions", ["kind"])
VERDICTS = Counter("next_tracer_test_verdicts_total", "Per-test verdicts", ["verdict"])
LATENCY = Histogram(
    "next_tracer_execution_seconds",
    "Wall time of one sandboxed execution",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUED = Gauge("next_tracer_queued_requests", "Requests waiting for a sandbox slot")
RUNNING = Gauge("next_tracer_running_executions", "Sandboxed executions in progress")
SANDBOX_RETRIES = Counter("next_tracer_sandbox_retries_total", "Executions run again because the sandbox failed")
LIMITS_MODE = Gauge(
    "next_tracer_jail_limits_mode", "How per-jail memory and pids are bounded (1 for the mode in use)", ["mode"]
)
