// A promise without the promise: whoever waits calls then() at once, and resolve() or reject()
// runs what it was given there and then. On a path taken by most requests, a promise and the
// microtask of its continuation cost more than the wait they stand for.
import type { Later } from './ports.ts';

export class Deferred implements Later {
  private ok: (() => void) | undefined = undefined;
  private fail: ((err: unknown) => void) | undefined = undefined;
  private settled: { err: unknown } | undefined = undefined;

  then(ok: () => void, fail?: (err: unknown) => void): void {
    if (this.settled === undefined) {
      this.ok = ok;
      this.fail = fail;
    } else if (this.settled.err === undefined) ok();
    else fail?.(this.settled.err);
  }

  resolve(): void {
    this.settled = { err: undefined };
    this.ok?.();
  }

  reject(err: unknown): void {
    this.settled = { err };
    this.fail?.(err);
  }
}
