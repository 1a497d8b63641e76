"""CLI commands, one module each (see :mod:`recommender.cli`). Not a public API."""
