/**
 * Where the risk actor's kill switch is kept so that a restarted kernel (or
 * every kernel of a cluster) comes back with it: declared here, next to the
 * risk actor that uses it; `adapters/redis/redis-kill-switch.ts` implements
 * it on Redis, tests with a Map.
 */
export interface KillSwitchState {
  killed: boolean;
  /** Who flipped it. */
  by: string;
  /** Why, in their words. */
  reason: string;
  /** When, ms since the epoch. */
  at: number;
}

export interface KillSwitchStore {
  /** The saved state of `account`, or undefined when none was ever saved. */
  load(account: string): Promise<KillSwitchState | undefined>;
  /** Save the state of `account`; rejects when the store cannot take it. */
  save(account: string, state: KillSwitchState): Promise<void>;
  /** Undefined while the store answers, else why not (for /health/ready). */
  unavailable(): string | undefined;
  close(): Promise<void>;
}
