"""The feed invariant of DESIGN.md, checked by its state machine on the in-memory adapters."""

from __future__ import annotations

from tests.support.feed_machine import FeedMachine

TestFeedInvariant = FeedMachine.TestCase
