// Work written once for both backends that must run inside one transaction: a webhook's effect.
// It is a generator that yields each storage call's result (`yield* get(store.call())`) and gets
// the value back. On SQLite every result is a plain value and runSync drives the generator to its
// end inside better-sqlite3's synchronous transaction, so no other code's statements can run in
// between; on PostgreSQL runAsync awaits each result on the transaction's connection.
import type { MaybePromise } from './ports.ts';

export type Steps<T> = Generator<unknown, T, unknown>;

/** A port whose methods may answer later (PostgreSQL) or at once (SQLite). */
export type MaybeAsync<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => MaybePromise<R> : T[K] };

/** The value of a storage call, as one step. */
export function* get<T>(result: MaybePromise<T>): Steps<T> {
  return (yield result) as T;
}

/** Runs steps whose every result is a plain value. */
export function runSync<T>(steps: Steps<T>): T {
  let step = steps.next();
  while (!step.done) {
    if (step.value instanceof Promise) throw new Error('a synchronous transaction was handed a promise');
    step = steps.next(step.value);
  }
  return step.value;
}

/** Runs steps, waiting for each result. */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let step = steps.next();
  while (!step.done) step = steps.next(await step.value);
  return step.value;
}
