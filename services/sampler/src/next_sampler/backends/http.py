"""JSON over HTTP for the server backends: a cap on requests in flight and bounded retries."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx

from next_common.errors import InvalidArgumentError, UnavailableError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer is treated as down: the stage stops and resumes later


def retry_after_s(resp: httpx.Response) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date) in seconds, capped; None if absent or unreadable."""
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def body_text(resp: httpx.Response) -> str:
    return resp.text[:500]


class RetryingJsonClient:
    """POSTs JSON; statuses in ``retry_status`` and connection errors are retried with
    exponential backoff up to ``retries`` times, any other non-200 status is refused at once."""

    def __init__(
        self,
        name: str,
        base_url: str,
        retry_status: frozenset[int],
        max_in_flight: int,
        retries: int,
        backoff_s: float,
        timeout_s: float,
        headers: dict[str, str] | None = None,
        describe_error: Callable[[httpx.Response], str] = body_text,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.retry_status = retry_status
        self.retries = retries
        self.backoff_s = backoff_s
        self.describe_error = describe_error
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._client = httpx.AsyncClient(
            timeout=timeout_s, headers=headers or {}, limits=httpx.Limits(max_connections=max_in_flight)
        )

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """The decoded JSON answer (``{}`` for an empty one)."""
        delay, last = self.backoff_s, ""
        for attempt in range(self.retries + 1):
            wait = delay * random.uniform(0.75, 1.0)  # jitter: clients that failed together do not retry together
            async with self._in_flight:
                try:
                    resp = await self._client.post(self.base_url + path, json=body)
                except httpx.TransportError as exc:
                    resp, last = None, "%s: %s" % (type(exc).__name__, exc)
            if resp is not None:
                if resp.status_code == 200:
                    return resp.json() if resp.content else {}
                message = self.describe_error(resp)
                if resp.status_code not in self.retry_status:
                    raise InvalidArgumentError("%s refused %s (%d): %s" % (self.name, path, resp.status_code, message))
                last = "%d: %s" % (resp.status_code, message)
                asked = retry_after_s(resp)
                wait = asked if asked is not None else wait
            if attempt < self.retries:
                log.info(
                    "%s request failed (%s); retry %d/%d in %.2fs", self.name, last, attempt + 1, self.retries, wait
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, MAX_BACKOFF_S)
        raise UnavailableError(
            "%s at %s failed after %d attempts: %s" % (self.name, self.base_url, self.retries + 1, last)
        )

    async def close(self) -> None:
        await self._client.aclose()
