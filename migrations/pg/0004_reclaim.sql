-- A node that finds a balance empty while other nodes' leases hold it asks them to give it back:
-- a 'reclaim' change, naming the account.
ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
ALTER TABLE changes ADD CONSTRAINT changes_kind_check CHECK (kind IN ('key', 'account', 'balance', 'reclaim', 'all'));
