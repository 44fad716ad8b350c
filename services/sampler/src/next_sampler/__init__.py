"""NExT sampler: one sampling API over inference backends."""
