// Requests waiting for an upstream connection: each is failed once its deadline passes, unless a
// connection took it first; one that left the queue keeps no link to those still in it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Upstreams, type Queued } from '../src/pipeline/upstreams.ts';

function waiter(): Queued & { failures: Error[] } {
  const failures: Error[] = [];
  return { failures, fail: (err) => failures.push(err), waitDeadline: 0, waitPrev: undefined, waitNext: undefined };
}

describe('the queue of requests waiting for a connection', () => {
  let upstreams: Upstreams;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    upstreams = new Upstreams([], { connections: 1, bodyTimeoutMs: 1_000, writeTimeoutMs: 1_000, maxBodyBytes: 1, now: Date.now });
  });
  afterEach(async () => {
    await upstreams.close();
    vi.useRealTimers();
  });

  it('fails the ones past their deadline, whatever their place, and never one that started', () => {
    const [first, middle, last, late] = [waiter(), waiter(), waiter(), waiter()];
    upstreams.queued(first, 100);
    upstreams.queued(middle, 100);
    upstreams.queued(late, 5_000);
    upstreams.queued(last, 100);
    upstreams.dequeue(middle);
    expect([middle.waitPrev, middle.waitNext]).toEqual([undefined, undefined]);

    vi.advanceTimersByTime(250);
    expect(first.failures.map((e) => e.message)).toEqual([expect.stringMatching(/upstream/i)]);
    expect(last.failures).toHaveLength(1);
    expect(middle.failures).toHaveLength(0);
    expect(late.failures).toHaveLength(0);
    // The one left is the whole queue now: nothing links to the ones that went.
    expect([late.waitPrev, late.waitNext]).toEqual([undefined, undefined]);

    upstreams.dequeue(first); // ended already: nothing happens
    upstreams.dequeue(late);
    vi.advanceTimersByTime(10_000);
    expect([first.failures.length, middle.failures.length, last.failures.length, late.failures.length]).toEqual([1, 0, 1, 0]);
  });

  it('takes requests again after it was emptied', () => {
    const a = waiter();
    upstreams.queued(a, 100);
    upstreams.dequeue(a);
    const b = waiter();
    upstreams.queued(b, 100);
    vi.advanceTimersByTime(250);
    expect([a.failures.length, b.failures.length]).toEqual([0, 1]);
  });
});
