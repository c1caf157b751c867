import type { MetricsSnapshot } from './prometheus-text.js';

/**
 * The kernel's side of "nothing was lost": from two `/metrics` scrapes around
 * a step (the second after the drain wait), every tick the bench sent must
 * have been received, and none of the loss counters may have grown. A counter
 * the kernel does not export (yet) reads as 0, so it can never grow.
 */

/** Counters that must not grow during a step (summed over their labels). */
export const LOSS_COUNTERS = [
  'qilin_ticks_dropped_total',
  'qilin_ticks_missing_total',
  'qilin_nats_slow_consumer_total',
  'qilin_nats_disconnects_total',
  'qilin_worker_restarts_total',
  'qilin_outputs_dropped_total',
] as const;

export const RECEIVED_COUNTER = 'qilin_ticks_received_total';
export const REJECTED_COUNTER = 'qilin_ticks_rejected_total';

/** Outcome of {@link checkKernelLoss}. */
export interface KernelLossCheck {
  /** Ticks the bench published in the step. */
  sent: number;
  /** Growth of `qilin_ticks_received_total`. */
  received: number;
  /** Growth of `qilin_ticks_rejected_total` (all reasons). */
  rejected: number;
  /** Growth of each loss counter (0 when absent or unchanged). */
  grown: Record<(typeof LOSS_COUNTERS)[number], number>;
  /** True when received === sent and no loss counter grew. */
  pass: boolean;
  /** Why it failed, one phrase per problem (empty when it passed). */
  reasons: string[];
}

/** Compare two scrapes around a step that sent `sent` ticks. */
export function checkKernelLoss(
  before: MetricsSnapshot,
  after: MetricsSnapshot,
  sent: number,
): KernelLossCheck {
  const delta = (name: string): number => after.sum(name) - before.sum(name);
  const received = delta(RECEIVED_COUNTER);
  const rejected = delta(REJECTED_COUNTER);
  const reasons: string[] = [];
  if (received < sent) {
    reasons.push(
      `kernel received ${received} of ${sent} ticks` +
        (rejected > 0 ? ` (${rejected} rejected)` : ''),
    );
  } else if (received > sent) {
    reasons.push(`kernel received ${received} ticks but the bench sent ${sent}`);
  }
  const grown = {} as KernelLossCheck['grown'];
  for (const name of LOSS_COUNTERS) {
    const d = delta(name);
    grown[name] = d;
    if (d > 0) reasons.push(`${name} +${d}`);
  }
  return { sent, received, rejected, grown, pass: reasons.length === 0, reasons };
}
