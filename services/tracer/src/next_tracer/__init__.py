"""NExT tracer: sandboxed test runner and execution tracer for Python programs."""
