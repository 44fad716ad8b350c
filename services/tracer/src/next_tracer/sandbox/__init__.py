"""Running the harness in a jail: nsjail (default) or, when asked for, no sandbox."""
