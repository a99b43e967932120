"""Benchmarks: tailnet (sync, asyncio, trio) beside Go's tsnet and loopback TCP, on a local tailnet.

Run them with ``./dev bench`` (see README.md here and docs/performance.md).
"""
