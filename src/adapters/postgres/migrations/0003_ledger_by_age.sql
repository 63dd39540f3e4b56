-- Ledger marks are deleted once they are older than the ledger's retention, oldest first.
CREATE INDEX processed_events_by_age ON processed_events (processed_at);
