-- An email belongs to one account whatever its case: Ann@Example.com and ann@example.com are the
-- same mailbox in practice. NOCASE folds ASCII letters only, as SQLite's lower() does.
--
-- A database that already holds two accounts whose emails differ only in case stops here, with
-- nothing changed and a message naming them: which one is the customer's is the operator's call,
-- and merging accounts would move money. Give the others another email, then migrate again:
--   UPDATE accounts SET email = 'ann+old@example.com' WHERE id = 'acct_…';
-- (RAISE works only inside a trigger: inserting the list into a temporary table whose trigger
-- raises turns "there are clashes" into an error that carries them.)
CREATE TEMP TABLE email_clash (accounts TEXT NOT NULL);
CREATE TEMP TRIGGER email_clash_stop BEFORE INSERT ON email_clash BEGIN
  SELECT RAISE(ABORT, 'migration 0005 stopped, nothing changed: emails must be unique ignoring case, and these accounts'
    || ' share one: ' || NEW.accounts || '. Give all but one of each group another email'
    || ' (UPDATE accounts SET email = ... WHERE id = ...), then migrate again.');
END;
INSERT INTO email_clash
  SELECT group_concat(clash, '; ' ORDER BY first) FROM (
    SELECT group_concat(id || ' ' || email, ', ' ORDER BY created_at, id) AS clash, min(created_at) AS first
    FROM accounts GROUP BY email COLLATE NOCASE HAVING count(*) > 1
  ) HAVING count(*) > 0;
DROP TABLE email_clash;

-- The case-sensitive UNIQUE of 0001 stays (SQLite drops a column constraint only by rebuilding
-- the table); this index is the stricter one.
CREATE UNIQUE INDEX accounts_email_nocase ON accounts (email COLLATE NOCASE);
