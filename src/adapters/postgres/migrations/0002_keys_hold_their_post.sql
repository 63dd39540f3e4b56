-- An Idempotency-Key is now recorded in the statement that stores its post: no key is ever
-- waiting for one. Claims left in flight by the previous schema belong to requests that are over.
DELETE FROM idempotency_keys WHERE post_id IS NULL;
ALTER TABLE idempotency_keys ALTER COLUMN post_id SET NOT NULL;
