"""Composition root and the processes feedcore runs as: HTTP API, processor, relay, CLI."""
