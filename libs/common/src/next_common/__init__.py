"""Code every NExT service uses: errors, gRPC server wiring, settings, logging, plugins."""
