import fc from 'fast-check';
import t from 'tap';
import {
  DEFAULT_SIGNAL_OPTIONS,
  RETRY_FLOOR_US,
  SignalGate,
  Suppressed,
  type SignalOptions,
} from '../../actors/signal-gate.js';
import { DecisionBoard, DecisionView } from '../../kernel/decision-board.js';
import { ErrorCodes } from '../../kernel/errors.js';

const T0 = 1_700_000_000_000_000;

interface Proposal {
  side: number;
  strength: number;
  qty: number;
  suppressed: number;
}

/**
 * The documented rule (signal-gate.ts class comment), restated naively:
 *
 *  nothing   trades < warmup, or target NaN
 *  propose   target ≠ approved and ts − last proposal ≥ wait; wait = minIntervalUs
 *            for a target other than the last proposed one, else (a retry of a
 *            proposal not approved) minIntervalUs · 2^k, capped at retryMaxUs,
 *            k = retries of that side so far; the run of retries ends when the
 *            target equals the approved side or the epoch changes
 *  refresh   target = approved ≠ 0, the last proposal was that side, |strength −
 *            its strength| > minStrengthChange, ts − last proposal ≥ minIntervalUs
 *  epoch     a new epoch forgets the last proposal's time and the backoff
 *  quality   quality < minQuality: the proposal is emitted suppressed (low_quality)
 *
 * `restartCountsAsRetry`: whether the first proposal after the run of retries
 * ended (epoch change, target back to approved) counts as a retry, i.e. is
 * followed by a wait of 2 × minIntervalUs rather than minIntervalUs (the doc:
 * "the backoff is forgotten"; SignalGate does the latter).
 */
class NaiveGate {
  private lastTs = -Infinity;
  private lastSide = NaN;
  private lastStrength = 0;
  private k = 0;
  private fresh = true;
  private epoch = 0;

  constructor(
    private readonly o: SignalOptions,
    private readonly restartCountsAsRetry = false,
  ) {}

  step(
    target: number,
    strength: number,
    ts: number,
    trades: number,
    quality: number,
    approved: number,
    epoch: number,
  ): Proposal | null {
    const o = this.o;
    if (trades < o.warmup || Number.isNaN(target)) return null;
    if (!o.emitEveryTick) {
      if (epoch !== this.epoch) {
        this.epoch = epoch;
        this.lastTs = -Infinity;
        this.k = 0;
        this.fresh = true;
      }
      const since = ts - this.lastTs;
      if (target === approved) {
        this.k = 0;
        this.fresh = true;
        const refresh =
          target !== 0 &&
          this.lastSide === target &&
          Math.abs(strength - this.lastStrength) > o.minStrengthChange &&
          since >= o.minIntervalUs;
        if (!refresh) return null;
      } else if (target === this.lastSide) {
        const wait = Math.min(
          Math.max(o.minIntervalUs, RETRY_FLOOR_US) * 2 ** this.k,
          o.retryMaxUs,
        );
        if (since < wait) return null;
        if (this.restartCountsAsRetry || !this.fresh) this.k++;
      } else {
        if (since < o.minIntervalUs) return null;
        this.k = 0;
      }
    }
    this.fresh = false;
    this.lastTs = ts;
    this.lastSide = target;
    this.lastStrength = strength;
    return {
      side: target,
      strength,
      qty: o.baseQty * strength,
      suppressed: quality < o.minQuality ? Suppressed.LOW_QUALITY : Suppressed.NONE,
    };
  }
}

type Verdict = 'approve' | 'reject' | 'unknown';

interface Step {
  dtUs: number;
  /** 'keep' holds the previous target (trends last). */
  target: number | 'keep';
  strength: number;
  quality: number;
  /** What the executor side does with a proposal made on this tick. */
  verdict: Verdict;
  /** Resync (kill switch resumed, breaker closed) just before this tick. */
  resync: boolean;
}

interface Traced {
  ts: number;
  target: number;
  strength: number;
  quality: number;
  trades: number;
  approved: number;
  epochChanged: boolean;
  proposal: Proposal | null;
}

const optionsArb: fc.Arbitrary<SignalOptions> = fc
  .record({
    minIntervalUs: fc.constantFrom(0, 1_000, 250_000),
    retryFactor: fc.constantFrom(1, 2, 3, 8, 20),
    minStrengthChange: fc.constantFrom(0, 0.1, 0.5),
    minQuality: fc.constantFrom(0, 0.5, 0.95),
    warmup: fc.integer({ min: 0, max: 15 }),
    baseQty: fc.constantFrom(1, 2.5),
  })
  .map(({ retryFactor, ...o }) => ({
    ...DEFAULT_SIGNAL_OPTIONS,
    ...o,
    retryMaxUs: o.minIntervalUs === 0 ? 5_000 : o.minIntervalUs * retryFactor,
  }));

const stepArb = (o: SignalOptions): fc.Arbitrary<Step> =>
  fc.record({
    dtUs: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 0, max: Math.max(1, Math.floor(o.minIntervalUs / 3)) }),
      fc.integer({ min: 0, max: Math.max(1, o.minIntervalUs * 2) }),
      fc.integer({ min: 0, max: Math.max(1, o.retryMaxUs * 2) }),
    ),
    target: fc.oneof(
      { weight: 12, arbitrary: fc.constant<'keep'>('keep') },
      { weight: 1, arbitrary: fc.constantFrom(1, -1, 0, NaN) },
    ),
    strength: fc.constantFrom(0.1, 0.3, 0.35, 0.8, 1),
    quality: fc.oneof(
      { weight: 6, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.constantFrom(0, 0.5, 0.9) },
    ),
    verdict: fc.constantFrom<Verdict>('approve', 'approve', 'reject', 'reject', 'unknown'),
    resync: fc.oneof({ weight: 25, arbitrary: fc.constant(false) }, fc.constant(true)),
  });

const scenarioArb = optionsArb.chain((o) =>
  fc.tuple(
    fc.constant(o),
    fc.array(stepArb(o), { minLength: 100, maxLength: 300 }),
    fc.integer({ min: 1, max: 4 }),
    fc.nat({ max: 11 }),
  ),
);

/**
 * Drive a gate through `steps` with a simulated executor behind a real
 * DecisionBoard: an unsuppressed proposal is approved (board.approve), rejected
 * (nothing written) or left unknown (board.unknown) as the step says; a
 * suppressed one never reaches risk. The gate reads approved side and epoch
 * through a DecisionView, as the SymbolActor does.
 */
function simulate(o: SignalOptions, steps: readonly Step[], shards: number, symId: number) {
  const gate = new SignalGate(o);
  const model = new NaiveGate(o);
  const board = new DecisionBoard(shards, 4);
  const shard = symId % shards;
  const view = new DecisionView(board.buffers[shard]!);
  const local = (symId - shard) / shards;
  const trace: Traced[] = [];
  const mismatches: string[] = [];
  let ts = T0;
  let target = NaN;
  let lastEpoch = view.epoch;
  steps.forEach((s, i) => {
    ts += s.dtUs;
    if (s.target !== 'keep') target = s.target;
    if (s.resync) board.resync();
    const approved = view.approved(local);
    const epoch = view.epoch;
    const trades = i + 1;
    const got = gate.decide(target, s.strength, ts, trades, s.quality, approved, epoch);
    const want = model.step(target, s.strength, ts, trades, s.quality, approved, epoch);
    const proposal: Proposal | null = got
      ? { side: gate.side, strength: gate.strength, qty: gate.qty, suppressed: gate.suppressed }
      : null;
    if (JSON.stringify(proposal) !== JSON.stringify(want)) {
      mismatches.push(
        `tick ${i} (t+${ts - T0} µs, target ${target}, approved ${approved}, epoch ${epoch}): ` +
          `gate ${JSON.stringify(proposal)}, rule ${JSON.stringify(want)}`,
      );
    }
    trace.push({
      ts,
      target,
      strength: s.strength,
      quality: s.quality,
      trades,
      approved,
      epochChanged: epoch !== lastEpoch,
      proposal,
    });
    lastEpoch = epoch;
    if (proposal !== null && proposal.suppressed === Suppressed.NONE) {
      if (s.verdict === 'approve') board.approve(symId, proposal.side);
      else if (s.verdict === 'unknown') board.unknown(symId);
    }
  });
  return { trace, mismatches };
}

/** The documented rules checked directly on a trace (no model state). */
function traceViolations(o: SignalOptions, trace: readonly Traced[]): string[] {
  const bad: string[] = [];
  let prev: Traced | undefined; // last proposal
  let epochSincePrev = false;
  let epochPending = false; // an epoch change not yet followed by a proposal
  trace.forEach((k, i) => {
    if (k.epochChanged) {
      epochSincePrev = true;
      epochPending = true;
    }
    const eligible = k.trades >= o.warmup && !Number.isNaN(k.target);
    const p = k.proposal;
    // (a) nothing before warm-up or without an opinion
    if (p !== null && !eligible) bad.push(`(a) tick ${i}: proposed while not eligible`);
    // (e) after an epoch change the current view is proposed at once
    if (epochPending && eligible && k.target !== k.approved && p === null) {
      bad.push(`(e) tick ${i}: epoch changed, target ${k.target} ≠ approved ${k.approved}, silent`);
    }
    if (p === null) return;
    // (f) suppression exactly below minQuality
    const sup = k.quality < o.minQuality ? Suppressed.LOW_QUALITY : Suppressed.NONE;
    if (p.suppressed !== sup) bad.push(`(f) tick ${i}: suppressed ${p.suppressed}, want ${sup}`);
    if (p.side !== k.target || p.strength !== k.strength || p.qty !== o.baseQty * k.strength) {
      bad.push(`tick ${i}: proposal ${JSON.stringify(p)} is not the target/strength`);
    }
    // (b) the approved side is only re-proposed as a strength refresh
    if (p.side === k.approved) {
      const refresh =
        p.side !== 0 &&
        prev?.proposal?.side === p.side &&
        Math.abs(p.strength - prev.proposal.strength) > o.minStrengthChange &&
        (epochSincePrev || k.ts - prev.ts >= o.minIntervalUs);
      if (!refresh) bad.push(`(b) tick ${i}: approved side ${p.side} re-proposed`);
    }
    // (c)/(d) never two proposals closer than minIntervalUs within one epoch
    if (prev !== undefined && !epochSincePrev && k.ts - prev.ts < o.minIntervalUs) {
      bad.push(`(d) tick ${i}: ${k.ts - prev.ts} µs after the last proposal`);
    }
    prev = k;
    epochSincePrev = false;
    epochPending = false;
  });
  return bad;
}

void t.test('the gate follows the documented rule under a random executor (property)', (t) => {
  const seen = { proposals: 0, suppressed: 0, retries: 0, refreshes: 0, afterEpoch: 0 };
  fc.assert(
    fc.property(scenarioArb, ([o, steps, shards, symId]) => {
      const { trace, mismatches } = simulate(o, steps, shards, symId);
      const violations = traceViolations(o, trace);
      let prev: Traced | undefined;
      let epochSince = false;
      for (const k of trace) {
        epochSince ||= k.epochChanged;
        const p = k.proposal;
        if (p === null) continue;
        seen.proposals++;
        if (p.suppressed !== 0) seen.suppressed++;
        if (epochSince) seen.afterEpoch++;
        if (prev?.proposal?.side === p.side) {
          if (p.side === k.approved) seen.refreshes++;
          else seen.retries++;
        }
        prev = k;
        epochSince = false;
      }
      if (mismatches.length > 0 || violations.length > 0) {
        throw new Error([...mismatches, ...violations].slice(0, 5).join('\n'));
      }
    }),
    { numRuns: 1_000 },
  );
  // the runs exercised every branch (not a vacuous property)
  t.ok(seen.proposals > 5_000, `${seen.proposals} proposals`);
  t.ok(seen.suppressed > 100, `${seen.suppressed} suppressed`);
  t.ok(seen.retries > 500, `${seen.retries} retries of a side not approved`);
  t.ok(seen.refreshes > 50, `${seen.refreshes} strength refreshes`);
  t.ok(seen.afterEpoch > 100, `${seen.afterEpoch} proposals right after an epoch change`);
  t.end();
});

void t.test('retries of a rejected target wait min, 2×, 4× … capped (property)', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1_000, max: 300_000 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 2, max: 50 }),
      fc.constantFrom(1, -1, 0),
      fc.constantFrom<'reject' | 'suppressed' | 'unseen'>('reject', 'suppressed', 'unseen'),
      (minIntervalUs, factor, ticksPerInterval, side, how) => {
        const retryMaxUs = minIntervalUs * factor;
        const maxDtUs = Math.floor(minIntervalUs / ticksPerInterval);
        const gate = new SignalGate({ minIntervalUs, retryMaxUs, warmup: 0 });
        // approved is something else than the target; it never changes (every proposal
        // rejected, suppressed, or approved but not yet seen — the gate cannot tell)
        const approved = how === 'unseen' ? NaN : side === 1 ? -1 : 1;
        const quality = how === 'suppressed' ? 0 : 1;
        const at: number[] = [];
        let ts = T0;
        let i = 0;
        while (at.length < 14) {
          if (gate.decide(side, 0.5, ts, i, quality, approved, 0)) {
            if (gate.side !== side) return false;
            if (gate.suppressed !== (how === 'suppressed' ? 1 : 0)) return false;
            at.push(ts);
          }
          ts += 1 + ((i * 7919) % maxDtUs); // deterministic jitter, 1 … maxDtUs µs
          i++;
        }
        if (at[0] !== T0) return false; // a new target goes out on its first tick
        for (let j = 1; j < at.length; j++) {
          const wait = Math.min(Math.max(minIntervalUs, RETRY_FLOOR_US) * 2 ** (j - 1), retryMaxUs);
          const gap = at[j]! - at[j - 1]!;
          // proposed on the first tick at or past the wait: the ticks are ≤ maxDtUs apart
          if (gap < wait || gap >= wait + maxDtUs) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  // and one case written out: min 10 ms, cap 100 ms, a tick every ms
  const gate = new SignalGate({ minIntervalUs: 10_000, retryMaxUs: 100_000, warmup: 0 });
  const at: number[] = [];
  for (let ms = 0; ms <= 700; ms++) {
    if (gate.decide(1, 1, T0 + ms * 1000, 1, 1, 0, 0)) at.push(ms);
  }
  t.same(at, [0, 10, 30, 70, 150, 250, 350, 450, 550, 650], 'waits 10, 20, 40, 80, 100, 100 … ms');
  t.end();
});

void t.test('after an epoch change the backoff starts again at minIntervalUs', (t) => {
  // min 10 ms, cap 1 s, a tick every ms, buy always rejected; the epoch changes at 35 ms
  const gate = new SignalGate({ minIntervalUs: 10_000, retryMaxUs: 1_000_000, warmup: 0 });
  const model = new NaiveGate(gate.options, false);
  const at: number[] = [];
  const doc: number[] = [];
  for (let ms = 0; ms <= 120; ms++) {
    const epoch = ms >= 35 ? 1 : 0;
    if (gate.decide(1, 1, T0 + ms * 1000, 1, 1, 0, epoch)) at.push(ms);
    if (model.step(1, 1, T0 + ms * 1000, 1, 1, 0, epoch) !== null) doc.push(ms);
  }
  t.same(doc, [0, 10, 30, 35, 45, 65, 105], 'the doc: after the resync 10, 20, 40 ms again');
  t.same(at, doc, 'SignalGate: [0, 10, 30, 35, 55, 95] (waits 20, 40 ms after the resync)');
  t.end();
});

void t.test('a new target waits minIntervalUs from the last proposal, not the backoff', (t) => {
  const gate = new SignalGate({ minIntervalUs: 10_000, retryMaxUs: 1_000_000, warmup: 0 });
  const prop = (ms: number, target: number): number | null =>
    gate.decide(target, 1, T0 + ms * 1000, 1, 1, 0, 0) ? gate.side : null;
  t.equal(prop(0, 1), 1, 'buy');
  t.equal(prop(10, 1), 1, 'retry after 10 ms');
  t.equal(prop(30, 1), 1, 'retry after 20 ms');
  t.equal(prop(31, 1), null, 'next retry only after 40 ms');
  t.equal(prop(35, -1), null, 'sell 5 ms after the last proposal: too soon');
  t.equal(prop(39, -1), null, 'sell 9 ms after: too soon');
  t.equal(prop(40, -1), -1, 'sell 10 ms after the last proposal, although buy was backing off');
  t.equal(prop(49, 1), null, 'back to buy: a new target again, 9 ms');
  t.equal(prop(50, 1), 1, 'back to buy after 10 ms (the buy backoff was not kept)');
  t.equal(prop(59, 1), null);
  t.equal(prop(60, 1), 1, 'its retry after 10 ms');
  t.end();
});

void t.test('warm-up, NaN target and the approved side give nothing', (t) => {
  const gate = new SignalGate({ warmup: 30 });
  t.notOk(gate.decide(1, 1, T0, 29, 1, 0, 0), '29 trades < warmup 30');
  t.notOk(gate.decide(1, 1, T0, 0, 1, NaN, 5), 'not during warm-up, whatever the board says');
  t.notOk(gate.decide(NaN, 1, T0, 1000, 1, NaN, 0), 'NaN target, even with the side unknown');
  t.notOk(gate.decide(0, 1, T0, 30, 1, 0, 0), 'flat while nothing was approved: nothing to say');
  t.ok(gate.decide(1, 0.4, T0, 30, 1, 0, 0), '30 trades: buy');
  t.same([gate.side, gate.strength, gate.qty, gate.suppressed], [1, 0.4, 0.4, Suppressed.NONE]);
  // approved: the same target is never proposed again, however long it holds
  for (let s = 1; s <= 100; s++) {
    if (gate.decide(1, 0.4, T0 + s * 1_000_000, 30 + s, 1, 1, 0)) {
      t.fail(`buy re-proposed ${s} s after its approval`);
      break;
    }
  }
  t.ok(gate.decide(0, 0, T0 + 101_000_000, 200, 1, 1, 0), 'flat differs from approved buy');
  t.equal(gate.side, 0);
  t.notOk(gate.decide(0, 0, T0 + 102_000_000, 201, 1, 0, 0), 'flat approved (0): nothing');
  t.notOk(gate.decide(NaN, 1, T0 + 103_000_000, 202, 1, NaN, 0), 'NaN: nothing');
  t.ok(gate.decide(0, 0, T0 + 104_000_000, 203, 1, NaN, 0), 'side unknown: flat proposed again');
  t.end();
});

void t.test('strength refresh of the approved side', (t) => {
  const gate = new SignalGate({ minIntervalUs: 250_000, minStrengthChange: 0.1, warmup: 0 });
  const at = (ms: number, target: number, strength: number, approved: number): boolean =>
    gate.decide(target, strength, T0 + ms * 1000, 1, 1, approved, 0);
  t.ok(at(0, 1, 0.5, 0), 'buy at 0.5');
  t.notOk(at(1_000, 1, 0.6, 1), '|0.6 − 0.5| = 0.1 is not more than 0.1');
  t.notOk(at(1_100, 1, 0.4, 1), '|0.4 − 0.5| = 0.1 neither');
  t.ok(at(1_200, 1, 0.65, 1), '0.15 more: refreshed');
  t.same([gate.side, gate.strength, gate.qty], [1, 0.65, 0.65]);
  t.notOk(at(1_449, 1, 1, 1), '249 ms after the refresh: too soon');
  t.ok(at(1_450, 1, 1, 1), '250 ms after: refreshed again, to 1');
  t.notOk(at(5_000, 1, 0.95, 1), 'compared with the last proposal (1), not the first');
  t.ok(at(6_000, -1, 0.5, 1), 'sell');
  t.notOk(at(6_100, -1, 0.55, -1), 'sell approved; a sell refresh needs > 0.1 from 0.5 …');
  t.notOk(at(6_200, -1, 0.61, -1), '… 0.61 is, but 200 ms after the sell is too soon …');
  t.ok(at(6_250, -1, 0.61, -1), '… 250 ms after it is not');
  t.equal(gate.side, -1);
  t.ok(at(8_000, 0, 0.9, -1), 'flat');
  t.notOk(at(9_000, 0, 0.1, 0), 'flat approved: never refreshed, whatever the strength');
  t.notOk(at(10_000, 0, 0.9, 0));
  t.end();
});

void t.test('low quality: emitted suppressed, never counted as approved', (t) => {
  const gate = new SignalGate({
    minIntervalUs: 100_000,
    retryMaxUs: 1_000_000,
    minQuality: 0.5,
    warmup: 0,
  });
  const decide = (ms: number, quality: number): number | null =>
    gate.decide(1, 0.7, T0 + ms * 1000, 1, quality, 0, 0) ? gate.suppressed : null;
  t.equal(decide(0, 0.49), Suppressed.LOW_QUALITY, 'quality 0.49 < 0.5: suppressed');
  t.equal(gate.side, 1, 'with the proposal it would have made');
  t.equal(gate.qty, 0.7);
  t.equal(decide(50, 0.49), null, 'not repeated within minIntervalUs');
  t.equal(decide(100, 0.49), Suppressed.LOW_QUALITY, 'retried after 100 ms: still low');
  t.equal(decide(250, 1), null, 'quality back, but the next retry waits 200 ms');
  t.equal(decide(300, 0.5), Suppressed.NONE, 'quality 0.5 is enough: a real proposal');
  t.equal(Suppressed.LOW_QUALITY, 1);
  t.equal(Suppressed.NONE, 0);
  t.end();
});

void t.test('an epoch change proposes the current view on the next tick', (t) => {
  const gate = new SignalGate({ minIntervalUs: 250_000, retryMaxUs: 5_000_000, warmup: 0 });
  const at = (ms: number, target: number, approved: number, epoch: number): boolean =>
    gate.decide(target, 1, T0 + ms * 1000, 1, 1, approved, epoch);
  t.ok(at(0, 1, 0, 0), 'buy');
  t.notOk(at(1, 1, 0, 0), 'rejected: backing off');
  t.ok(at(2, 1, 0, 1), 'epoch 1, 2 ms later: buy again at once');
  t.notOk(at(3, 1, 0, 1), 'the same epoch again: backing off');
  t.ok(at(502, 1, 0, 1), '500 ms after');
  t.notOk(at(503, 1, 1, 2), 'a new epoch with the target approved: nothing');
  t.ok(at(504, -1, 1, 2), 'but the epoch was taken: a new target goes out at once');
  t.notOk(at(505, NaN, 1, 3), 'a NaN target does not take the new epoch …');
  t.ok(at(506, -1, 1, 3), '… the next tick with an opinion does');
  t.end();
});

void t.test('the issue: kill switch rejects a steady buy; resume proposes it at once', (t) => {
  // One symbol on a real board. The trend turns buy at t = 0 and stays buy; the kill
  // switch is thrown, so risk rejects every proposal; at t = 20 s `ctl.risk.resume`
  // resyncs the board; the next proposal is approved.
  const board = new DecisionBoard(2, 8);
  const symId = 5; // shard 1, local 2
  const view = new DecisionView(board.buffers[1]!);
  const gate = new SignalGate(); // defaults: 250 ms, backoff to 5 s, warm-up 30
  let killed = true;
  const proposedMs: number[] = [];
  let approvedAtMs = -1;
  for (let i = 0; i <= 600; i++) {
    const ms = i * 50; // a trade every 50 ms for 30 s
    if (ms === 20_000) {
      killed = false;
      board.resync();
    }
    if (gate.decide(1, 0.8, T0 + ms * 1000, 100 + i, 1, view.approved(2), view.epoch)) {
      proposedMs.push(ms);
      t.equal(gate.side, 1);
      if (!killed) {
        board.approve(symId, gate.side);
        approvedAtMs = ms;
      }
    }
  }
  t.same(
    proposedMs,
    [0, 250, 750, 1_750, 3_750, 7_750, 12_750, 17_750, 20_000],
    'rejected: retried after 0.25, 0.5, 1, 2, 4, 5, 5 s; after the resume at once, then never',
  );
  t.equal(approvedAtMs, 20_000, 'the tick right after the resume proposed buy and it was approved');
  t.equal(view.approved(2), 1);
  t.equal(board.code(symId), 1);
  t.end();
});

void t.test('emitEveryTick proposes on every eligible trade (property)', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          target: fc.constantFrom(1, -1, 0, NaN),
          approved: fc.constantFrom(1, -1, 0, NaN),
          quality: fc.constantFrom(0, 0.5, 1),
          dtUs: fc.nat({ max: 1000 }),
          epoch: fc.nat({ max: 3 }),
        }),
        { maxLength: 100 },
      ),
      fc.nat({ max: 10 }),
      (ticks, warmup) => {
        const gate = new SignalGate({ emitEveryTick: true, warmup, baseQty: 2 });
        let ts = T0;
        return ticks.every((k, i) => {
          ts += k.dtUs;
          const got = gate.decide(k.target, 0.25, ts, i, k.quality, k.approved, k.epoch);
          const want = i >= warmup && !Number.isNaN(k.target);
          if (got !== want) return false;
          return (
            !got ||
            (gate.side === k.target &&
              gate.qty === 0.5 &&
              gate.suppressed === (k.quality < 0.5 ? 1 : 0))
          );
        });
      },
    ),
  );
  const gate = new SignalGate({ emitEveryTick: true, warmup: 0 });
  let n = 0;
  for (let i = 0; i < 10; i++) if (gate.decide(1, 1, T0, i, 1, 1, 0)) n++;
  t.equal(n, 10, 'the approved side, ten times at one instant');
  t.end();
});

void t.test('reset() forgets the proposals', (t) => {
  const gate = new SignalGate({ minIntervalUs: 250_000, warmup: 0 });
  t.ok(gate.decide(1, 1, T0, 1, 1, 0, 0));
  t.notOk(gate.decide(1, 1, T0 + 1, 1, 1, 0, 0), 'backing off');
  gate.reset();
  t.ok(gate.decide(1, 1, T0 + 2, 1, 1, 0, 0), 'after reset, proposed at once');
  t.end();
});

void t.test('bad options are rejected naming the key', (t) => {
  const bad: Array<[Partial<SignalOptions>, string]> = [
    [{ minIntervalUs: 1_000, retryMaxUs: 999 }, 'retryMaxUs'],
    [{ retryMaxUs: 100_000 }, 'retryMaxUs'], // below the default minIntervalUs 250 ms
    [{ retryMaxUs: Infinity }, 'retryMaxUs'],
    [{ retryMaxUs: NaN }, 'retryMaxUs'],
    [{ minIntervalUs: -1 }, 'minIntervalUs'],
    [{ minIntervalUs: Infinity }, 'minIntervalUs'],
    [{ threshold: 1 }, 'threshold'],
    [{ threshold: -0.1 }, 'threshold'],
    [{ baseQty: 0 }, 'baseQty'],
    [{ baseQty: Infinity }, 'baseQty'],
    [{ minStrengthChange: 1.5 }, 'minStrengthChange'],
    [{ minStrengthChange: -0.1 }, 'minStrengthChange'],
    [{ emitEveryTick: 'yes' as unknown as boolean }, 'emitEveryTick'],
    [{ minQuality: 1.01 }, 'minQuality'],
    [{ minQuality: NaN }, 'minQuality'],
    [{ warmup: 1.5 }, 'warmup'],
    [{ warmup: -1 }, 'warmup'],
  ];
  for (const [o, key] of bad) {
    t.throws(
      () => new SignalGate(o),
      { code: ErrorCodes.INVALID_ARGUMENT, message: new RegExp(`invalid ${key}:`) },
      `${JSON.stringify(o)} names ${key}`,
    );
  }
  t.same(new SignalGate({ minIntervalUs: 1_000, retryMaxUs: 1_000 }).options.retryMaxUs, 1_000);
  t.same(new SignalGate().options, DEFAULT_SIGNAL_OPTIONS, 'defaults');
  t.end();
});
