/**
 * How a benchmark prints its figures: one row per figure with its target and whether it
 * is met (`ok` or `MISSED`, the word run-all.ts collects), then a line naming the missed
 * rows; a miss makes the process exit non-zero.
 */
import { cpus, loadavg } from 'node:os';

/** The rows of one benchmark. */
export class Report {
  private readonly missed: string[] = [];

  /** `width`: the label column's width. */
  constructor(private readonly width = 46) {}

  /** Prints a figure; `target` '-' for a figure shown without a target. */
  row(label: string, value: string, ok: boolean, target: string): void {
    process.stdout.write(`${label.padEnd(this.width)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
    if (!ok) this.missed.push(label);
  }

  /** A line under the rows (how a figure was made, what it is made of). */
  note(text: string): void {
    process.stdout.write(`  (${text})\n`);
  }

  /** Prints which rows missed and sets the exit status. */
  finish(): void {
    process.stdout.write(this.missed.length === 0 ? '\nAll targets met.\n' : `\nMissed: ${this.missed.join('; ')}\n`);
    process.exitCode = this.missed.length === 0 ? 0 : 1;
  }
}

/** The machine as a figure was made on it: CPUs and load average, for reading the figure. */
export function machine(): string {
  return `${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The p-th percentile (nearest rank) of a sorted list; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
