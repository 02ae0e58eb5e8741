-- Notifications on PostgreSQL, as SQLite keeps them (migrations/0009): each event's deliveries,
-- and the ledger's triggers for credits.added and the re-arming of balance.depleted. The events
-- themselves and the alert state are in `notifications` and `account_alerts` (migration 0002).
--
-- Several nodes deliver the same outbox: a node claims the deliveries it attempts until a
-- deadline (claimed_until), so no other node attempts them meanwhile; a node that dies with a
-- claim leaves it to expire, and another node attempts the delivery then.

CREATE TABLE notification_deliveries (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  notification_id  bigint NOT NULL REFERENCES notifications(id),
  channel          text NOT NULL CHECK (channel IN ('webhook', 'email')),
  -- The webhook's URL or the email address.
  target           text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint,
  -- When the first failed attempt of this round was: retries go on for a day from there.
  failing_since    bigint,
  -- The receiver's last answer (HTTP status, SMTP code; NULL: unreachable) and what went wrong.
  last_status      integer,
  last_error       text,
  delivered_at     bigint,
  -- The node attempting it, until when.
  claimed_by       text,
  claimed_until    bigint,
  UNIQUE (notification_id, channel, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_failed ON notification_deliveries (id) WHERE status = 'failed';
CREATE INDEX notification_deliveries_event ON notification_deliveries (notification_id);

-- credits.added where the money moves: with the ledger row of every grant and paid checkout,
-- whichever process writes it. The balance is what the customer has: the durable balance and
-- what open leases hold unspent, as far as their nodes have written it.
CREATE FUNCTION ledger_notifies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind IN ('grant', 'purchase') THEN
    INSERT INTO notifications (event_id, type, account_id, data, created_at)
    SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''), 'credits.added', NEW.account_id,
      json_build_object('accountId', NEW.account_id, 'kind', NEW.kind, 'reference', NEW.reference,
        'amountMicros', NEW.amount_micros, 'balanceMicros', NEW.balance_after_micros + coalesce((SELECT sum(granted_micros - consumed_micros)
          FROM leases WHERE account_id = NEW.account_id AND closed_at IS NULL), 0))::text,
      NEW.created_at;
  END IF;
  -- Money coming in re-arms balance.depleted, durably; balance.low is re-armed by the gateways against its threshold.
  IF NEW.kind IN ('grant', 'purchase', 'dispute_release') THEN
    UPDATE account_alerts SET depleted_armed = true WHERE account_id = NEW.account_id AND depleted_armed = false;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_notifies AFTER INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_notifies();
