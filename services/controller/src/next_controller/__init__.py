"""The NExT controller and the user-facing ``next`` command."""
