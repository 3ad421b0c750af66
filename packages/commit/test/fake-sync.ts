import type { GroupCommit } from '@wal/commit';

/** One call of the fake `sync`, settled by the test. */
export interface SyncCall {
  /** The coordinator's written watermark when `sync` was called. */
  readonly written: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
}

/** A `sync` whose every call stays pending until the test settles it. */
export class FakeSync {
  readonly calls: SyncCall[] = [];
  /** Set after construction, so that each call can record the written watermark. */
  commit: GroupCommit | undefined;
  /** Called inside `sync`, before it returns; may throw to check invariants. */
  onCall: ((call: SyncCall) => void) | undefined;

  readonly sync = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const call: SyncCall = {
        written: this.commit?.written ?? -1,
        resolve: () => {
          call.settled = true;
          resolve();
        },
        reject: (error) => {
          call.settled = true;
          reject(error);
        },
        settled: false,
      };
      this.calls.push(call);
      this.onCall?.(call);
    });

  /** The call still pending, if any. */
  get pending(): SyncCall | undefined {
    const last = this.calls.at(-1);
    return last !== undefined && !last.settled ? last : undefined;
  }

  /** Settles the pending call successfully; throws when none is pending. */
  resolvePending(): void {
    const call = this.pending;
    if (call === undefined) throw new Error('no sync is pending');
    call.resolve();
  }

  /** Rejects the pending call with `error`; throws when none is pending. */
  rejectPending(error: unknown): void {
    const call = this.pending;
    if (call === undefined) throw new Error('no sync is pending');
    call.reject(error);
  }
}

/** Waits one macrotask: a gathering flush scheduled before this call has called `sync`. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Lets queued microtasks (promise reactions) run, without running any macrotask. */
export async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** The settlement state of a promise, observed without awaiting it. */
export interface Observed {
  state: 'pending' | 'resolved' | 'rejected';
  error: unknown;
}

/** Starts observing `promise`; the returned record updates when it settles. */
export function observe(promise: Promise<void>): Observed {
  const observed: Observed = { state: 'pending', error: undefined };
  promise.then(
    () => {
      observed.state = 'resolved';
    },
    (error: unknown) => {
      observed.state = 'rejected';
      observed.error = error;
    },
  );
  return observed;
}
