// SQLite errors that mean "not now" rather than "never": another process holds the write lock
// (the gateway's connection does not wait for it), or the disk is full or failing. Nothing was
// written; the caller keeps what it meant to write and tries again later.
import { StorageBusy } from '../storage/ports.ts';

const TRANSIENT = /^SQLITE_(?:BUSY|LOCKED|FULL|IOERR)/;

/** Runs `write`; a transient failure becomes StorageBusy, anything else is thrown as is. */
export function writing<T>(write: () => T): T {
  try {
    return write();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== undefined && TRANSIENT.test(code)) throw new StorageBusy(err);
    throw err;
  }
}
