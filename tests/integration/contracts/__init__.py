"""The ports' documented contracts, each checked once against every adapter of the port.

Every test body runs twice, through the ``ports`` fixture: on the in-memory adapters and on the
PostgreSQL ones (on this session's database, emptied before each test). A test body never asks
which adapter it drives: what it asserts is what :mod:`feedcore.ports` promises.
"""
