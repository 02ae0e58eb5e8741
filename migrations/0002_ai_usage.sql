-- AI routes: usage rows carry the model, the tokens the provider reported and whether the cost
-- had to be estimated (the report never came: client gone, stream cut, timeout).
ALTER TABLE usage ADD COLUMN model TEXT;
ALTER TABLE usage ADD COLUMN input_tokens INTEGER;
ALTER TABLE usage ADD COLUMN cached_tokens INTEGER;
ALTER TABLE usage ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE usage ADD COLUMN output_tokens INTEGER;
ALTER TABLE usage ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
