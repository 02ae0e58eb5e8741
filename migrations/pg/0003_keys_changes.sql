-- What a node reads when it first sees a key: the head of the account's chain of rows on this
-- node (its newest row here), found through this index rather than the rollups.
CREATE INDEX usage_chain_head ON usage (node, account_id, id);

-- Changes other nodes must see (a key revoked, a plan changed, credits granted), written in the
-- transaction of the change. NOTIFY wakes the listening nodes at its commit; they also poll every
-- second, so a node whose listening connection dropped misses nothing.
CREATE TABLE changes (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('key', 'account', 'balance', 'all')),
  -- The key's hash for 'key', the account id for 'account' and 'balance', '' for 'all'.
  subject     text NOT NULL,
  -- Who changed it: a node's own listeners heard of it at once ('' for the CLI and other tools).
  node        text NOT NULL,
  created_at  bigint NOT NULL
);
CREATE INDEX changes_created ON changes (created_at);
