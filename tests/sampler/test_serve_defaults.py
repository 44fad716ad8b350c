"""The sampler's defaults: the replay backend says what it needs. (`serve` with no flags, the
local engine on the packaged SmolLM2, is tested with the other services in tests/common.)"""

from __future__ import annotations

import pytest

from next_common.errors import InvalidArgumentError
from next_sampler.backends.replay import ReplayBackend


def test_replay_without_a_file_says_what_it_needs() -> None:
    with pytest.raises(InvalidArgumentError, match="needs a file of recorded completions: --replay-file"):
        ReplayBackend("")
