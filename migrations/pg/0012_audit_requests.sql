-- The audit log as SQLite keeps it (migrations/0007_admin.sql): the admin API's request id of a
-- change (null for the CLI's), and append-only, like the ledger (0001's append_only()).
ALTER TABLE audit_log ADD COLUMN request_id text;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION append_only();
