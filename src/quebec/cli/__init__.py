"""Command line: `python -m quebec pkg …` and the `quebec` script."""
