"""Integration tests use the shared fixtures in ``tests/fixtures.py`` (registered by tests/conftest.py)."""
