"""Unit tests of the pydantic models and normalization functions."""
