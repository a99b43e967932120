"""Unit tests of tailnet's pure parts (see conftest.py)."""
