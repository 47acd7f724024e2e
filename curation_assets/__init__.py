"""Dagster wiring of crawlmix: one module per domain, assembled in `definitions.py`."""

# Shown on every asset in the UI: who to ask about it.
OWNERS = ["team:data-curation"]
