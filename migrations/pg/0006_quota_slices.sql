-- Monthly quotas shared by every node: the units of a period handed out to nodes so far, never
-- past the plan's quota (state/quota-slices.ts), and what the last take handed out (the take is
-- one upsert; RETURNING reads it). `used` stays what the usage rows counted.
ALTER TABLE quota_usage ADD COLUMN handed_out bigint NOT NULL DEFAULT 0 CHECK (handed_out >= 0);
ALTER TABLE quota_usage ADD COLUMN taken bigint NOT NULL DEFAULT 0;
