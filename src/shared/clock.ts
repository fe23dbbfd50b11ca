/** The passage of time, passed in so logic can be tested without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Whole seconds since the epoch. */
export function unixSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
