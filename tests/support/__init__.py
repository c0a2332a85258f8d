"""Helpers shared by tests (importable because pyproject sets pytest's pythonpath to tests/)."""
