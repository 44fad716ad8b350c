"""Domain errors. Services raise these; one interceptor maps them to gRPC status codes."""

from __future__ import annotations


class NextError(Exception):
    """Base class of errors that carry a message safe to show to the caller."""


class InvalidArgumentError(NextError):
    """The request is malformed; the message says what and where."""


class NotFoundError(NextError):
    """A named thing (format, job, adapter) does not exist."""


class AlreadyExistsError(NextError):
    """Creating something would overwrite what is there (an adapter, an output directory)."""


class FailedPreconditionError(NextError):
    """The request is valid but the target's state does not allow it (e.g. a job already ended)."""


class ResourceExhaustedError(NextError):
    """A bounded queue is full; the caller should retry later."""


class UnavailableError(NextError):
    """A dependency (sandbox, backend) cannot serve right now."""


class DeadlineExceededError(NextError):
    """The caller's deadline passed before the work finished."""
