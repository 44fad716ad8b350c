"""Sampler backends; each built-in module is a plugin registered like third-party ones."""

from next_sampler.backends import local, openai, replay, tgi

BUILTIN_BACKEND_PLUGINS = (local, openai, replay, tgi)
