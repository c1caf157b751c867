import fc from 'fast-check';
import t from 'tap';
import { Features } from '../../actors/features.js';
import { QualityIssue } from '../../actors/output-layout.js';
import { QualityChecker } from '../../actors/quality-checker.js';
import { ErrorCodes } from '../../kernel/errors.js';

/**
 * A checker for the generated streams: their trades walk away from the last
 * quote between quotes (up to ±0.1 % a tick), so the outside-band check gets
 * a 5 % tolerance here; it has tests of its own.
 */
const checker = (o: ConstructorParameters<typeof QualityChecker>[0] = {}): QualityChecker =>
  new QualityChecker({ bandTolerance: 0.05, ...o });

/** One generated tick of a clean market: seq +1, time forward, sane values. */
interface Tick {
  trade: boolean;
  dtUs: number;
  step: number; // |log return| in [0.5e-3, 1e-3] with a sign: never a spike at k = 8
  spread: number;
}

const tickArb = fc.record({
  trade: fc.boolean(),
  dtUs: fc.integer({ min: 1, max: 50_000 }),
  step: fc.double({ min: 0.0005, max: 0.001, noNaN: true }).chain((m) => fc.constantFrom(m, -m)),
  spread: fc.double({ min: 0.01, max: 1, noNaN: true }),
});

/** Feed a clean stream (with optional per-index mutations) and return the issue bits of each tick. */
function run(
  q: QualityChecker,
  ticks: Tick[],
  seqStep: (i: number) => number = () => 1,
  crossedAt: (i: number) => boolean = () => false,
): number[] {
  const f = new Features();
  let seq = 1000;
  let ts = 1_700_000_000_000_000;
  let px = 100;
  const bits: number[] = [];
  ticks.forEach((k, i) => {
    seq += seqStep(i);
    ts += k.dtUs;
    const recv = ts + 300;
    if (k.trade) {
      px *= Math.exp(k.step);
      bits.push(q.checkTrade(seq, ts, recv, px, 1, f.lastPx, f.vol, f.trades >= 30));
      f.onTrade(px);
    } else {
      const bid = px - k.spread / 2;
      const ask = crossedAt(i) ? bid - 0.01 : px + k.spread / 2;
      bits.push(q.checkQuote(seq, ts, recv, bid, 2, ask, 3));
    }
  });
  return bits;
}

void t.test('a clean stream scores 1 and raises no issue', (t) => {
  fc.assert(
    fc.property(fc.array(tickArb, { minLength: 1, maxLength: 300 }), (ticks) => {
      const q = checker({ qualityWindowTicks: 1e9 });
      const bits = run(q, ticks);
      return (
        bits.every((b) => b === 0) &&
        q.score === 1 &&
        q.issueBits === 0 &&
        q.ticks === ticks.length &&
        !bits.some((b) => q.immediateDue(b))
      );
    }),
  );
  t.pass();
  t.end();
});

void t.test('injected gaps are counted exactly by the missing seqs', (t) => {
  fc.assert(
    fc.property(
      fc.array(tickArb, { minLength: 2, maxLength: 200 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 20 })), { maxLength: 10 }),
      (ticks, gapSpec) => {
        const gapAt = new Map<number, number>();
        for (const [at, missing] of gapSpec) {
          const i = 1 + (at % (ticks.length - 1)); // not the first tick: it has no predecessor
          gapAt.set(i, (gapAt.get(i) ?? 0) + missing);
        }
        const q = checker({ qualityWindowTicks: 1e9 });
        const bits = run(q, ticks, (i) => 1 + (gapAt.get(i) ?? 0));
        const missing = [...gapAt.values()].reduce((a, b) => a + b, 0);
        const flagged = bits.filter((b) => (b & QualityIssue.SEQ_GAP) !== 0).length;
        const expectScore = 1 - missing / (ticks.length + missing);
        return (
          q.gaps === missing && flagged === gapAt.size && Math.abs(q.score - expectScore) < 1e-12
        );
      },
    ),
  );
  t.pass();
  t.end();
});

void t.test('crossed quotes are counted exactly', (t) => {
  fc.assert(
    fc.property(
      fc.array(tickArb, { minLength: 1, maxLength: 200 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (ticks, picks) => {
        const crossed = new Set(picks.map((p) => p % ticks.length).filter((i) => !ticks[i]!.trade));
        const q = checker({ qualityWindowTicks: 1e9 });
        run(q, ticks, undefined, (i) => crossed.has(i));
        return (
          q.crossed === crossed.size &&
          Math.abs(q.score - (1 - crossed.size / ticks.length)) < 1e-12
        );
      },
    ),
  );
  t.pass();
  t.end();
});

void t.test('out of order, duplicates, stale, bad values and spikes', (t) => {
  const q = checker();
  const T = 1_700_000_000_000_000;
  t.equal(q.checkTrade(10, T, T + 10, 100, 1, 0, 0, false), 0);
  t.equal(
    q.checkTrade(10, T + 1, T + 10, 100, 1, 100, 0, false),
    QualityIssue.DUPLICATE,
    'duplicate seq',
  );
  t.equal(
    q.checkTrade(9, T + 2, T + 10, 100, 1, 100, 0, false),
    QualityIssue.OUT_OF_ORDER,
    'older seq',
  );
  t.equal(
    q.checkTrade(11, T - 5, T + 10, 100, 1, 100, 0, false),
    QualityIssue.OUT_OF_ORDER,
    'older time',
  );
  t.equal(q.checkTrade(12, T + 3, T + 3 + 5_000_001, 100, 1, 100, 0, false), QualityIssue.STALE);
  t.equal(
    q.checkTrade(13, T + 4, T + 10, 0, 1, 100, 0, false),
    QualityIssue.BAD_VALUE,
    'zero price',
  );
  t.equal(
    q.checkTrade(14, T + 5, T + 10, 100, -1, 100, 0, false),
    QualityIssue.BAD_VALUE,
    'negative size',
  );
  t.equal(
    q.checkQuote(15, T + 6, T + 10, 100, 0, 101, 1),
    QualityIssue.BAD_VALUE,
    'zero quote size',
  );
  t.equal(
    q.checkTrade(16, T + 7, T + 10, 110, 1, 100, 0.001, true),
    QualityIssue.SPIKE,
    '|r| ≈ 0.095 > 8 · 0.001',
  );
  t.equal(q.checkTrade(17, T + 8, T + 10, 110, 1, 100, 0.001, false), 0, 'no spike during warm-up');
  t.equal(q.checkTrade(18, T + 9, T + 10, 100.5, 1, 100, 0.001, true), 0, '|r| ≈ 0.005 < 0.008');
  t.equal(q.ticks, 11);
  t.equal(q.outOfOrder, 2);
  t.equal(q.duplicates, 1);
  t.equal(q.stale, 1);
  t.equal(q.badValues, 3);
  t.equal(q.spikes, 1);
  t.equal(q.quarantined, 6, 'out of order, duplicate and bad values are quarantined');
  // weights: 2 out-of-order + 1 duplicate + 3 bad values at 1, stale and spike at 0.5
  t.equal(q.score, 1 - 7 / 11);
  const p = new Float64Array(57);
  q.writePayload(p);
  t.equal(p[0], q.score);
  t.equal(
    p[7],
    QualityIssue.OUT_OF_ORDER |
      QualityIssue.DUPLICATE |
      QualityIssue.STALE |
      QualityIssue.BAD_VALUE |
      QualityIssue.SPIKE,
  );
  q.resetWindow();
  t.equal(q.score, 1);
  t.equal(
    q.checkTrade(20, T + 20, T + 30, 100, 1, 100, 0, false),
    QualityIssue.SEQ_GAP,
    'seq survives the window',
  );
  t.equal(q.gaps, 1);
  t.end();
});

const T0 = 1_700_000_000_000_000;

/** One tick of a scripted stream: which issue it has, and its exchange-time step. */
interface Scripted {
  issue: 'none' | 'gap' | 'crossed' | 'stale' | 'late' | 'gap+crossed';
  dtUs: number;
}

/**
 * Feed quotes and ask what the SymbolActor asks per tick (immediateDue(bits),
 * then windowDue → emit, resetWindow). Returns each tick's bits and whether an
 * immediate and/or a window-end record was emitted on it.
 */
function drive(
  q: QualityChecker,
  script: readonly Scripted[],
): { bits: number[]; immediate: boolean[]; windowEnd: boolean[] } {
  const bits: number[] = [];
  const immediate: boolean[] = [];
  const windowEnd: boolean[] = [];
  let seq = 1;
  let ts = T0;
  for (const k of script) {
    seq += k.issue === 'gap' || k.issue === 'gap+crossed' ? 3 : 1;
    ts += k.dtUs;
    const tickTs = k.issue === 'late' ? ts - 1_000_000 : ts; // behind the newest time seen
    const recv = k.issue === 'stale' ? tickTs + 6_000_000 : tickTs + 100;
    const crossed = k.issue === 'crossed' || k.issue === 'gap+crossed';
    const b = q.checkQuote(seq, tickTs, recv, 100, 1, crossed ? 99.9 : 100.1, 1);
    const imm = q.immediateDue(b);
    const win = q.windowDue;
    if (win) q.resetWindow();
    bits.push(b);
    immediate.push(imm);
    windowEnd.push(win);
  }
  return { bits, immediate, windowEnd };
}

const count = (xs: boolean[]): number => xs.filter(Boolean).length;

void t.test('a persistent issue is reported once, then only at window ends', (t) => {
  for (const dtUs of [1_000, 1_000_000]) {
    // tick 0 has no predecessor (clean); every later tick reveals a seq gap
    const script: Scripted[] = Array.from({ length: 1000 }, (_, i) => ({
      issue: i === 0 ? 'none' : 'gap',
      dtUs,
    }));
    const q = checker({ qualityWindowTicks: 100, qualityImmediateIntervalUs: 100_000 });
    const r = drive(q, script);
    t.ok(
      r.bits.slice(1).every((b) => b === QualityIssue.SEQ_GAP),
      `${dtUs} µs apart: a gap on every tick`,
    );
    t.equal(count(r.immediate), 1, `${dtUs} µs apart: exactly one immediate record`);
    t.ok(r.immediate[1], 'on the first gap');
    t.equal(count(r.windowEnd), 10, 'ten window ends');
    t.equal(count(r.immediate.map((x, i) => x || r.windowEnd[i]!)), 11, '11 records in all');
  }
  t.end();
});

void t.test('alternating clean and crossed ticks: at most one immediate per interval', (t) => {
  // 1 000 quotes 1 ms apart (1 s), crossed on every odd tick; the state changes on every tick
  const script: Scripted[] = Array.from({ length: 1000 }, (_, i) => ({
    issue: i % 2 === 1 ? 'crossed' : 'none',
    dtUs: 1_000,
  }));
  const q = checker({ qualityWindowTicks: 1e9, qualityImmediateIntervalUs: 100_000 });
  const r = drive(q, script);
  const at = r.immediate.flatMap((x, i) => (x ? [i] : []));
  t.ok(
    at.every((i, k) => k === 0 || i - at[k - 1]! >= 100),
    `at least 100 ms between immediate records (ticks ${at.join(',')})`,
  );
  t.same(
    at,
    [1, 102, 203, 304, 405, 506, 607, 708, 809, 910],
    'the first tick past each interval whose state differs from the last report',
  );
  t.same(
    at.map((i) => r.bits[i]),
    [4, 0, 4, 0, 4, 0, 4, 0, 4, 0],
    'crossed, then clean, then crossed, … each report a real change',
  );
  t.end();
});

void t.test('recovery to clean is reported, also when the rate limit held it back', (t) => {
  const q = checker({ qualityWindowTicks: 1e9, qualityImmediateIntervalUs: 100_000 });
  const r = drive(q, [
    { issue: 'none', dtUs: 0 }, // 0: clean, as reported at start: nothing
    { issue: 'crossed', dtUs: 1_000 }, // 1: change → immediate
    { issue: 'crossed', dtUs: 200_000 }, // 2: same state, long after: nothing
    { issue: 'none', dtUs: 200_000 }, // 3: recovery → immediate
    { issue: 'none', dtUs: 200_000 }, // 4: still clean: nothing
    { issue: 'stale', dtUs: 200_000 }, // 5: change → immediate
    { issue: 'none', dtUs: 10_000 }, // 6: recovery, 10 ms later: held back
    { issue: 'none', dtUs: 10_000 }, // 7: still within 100 ms: held back
    { issue: 'none', dtUs: 85_000 }, // 8: 105 ms after tick 5, still clean → reported now
    { issue: 'gap+crossed', dtUs: 200_000 }, // 9: change → immediate
    { issue: 'crossed', dtUs: 200_000 }, // 10: a different set of issues is a change → immediate
    { issue: 'late', dtUs: 10_000 }, // 11: change, rate-limited
    { issue: 'crossed', dtUs: 100_000 }, // 12: back to the reported state: nothing, though the interval passed
  ]);
  t.same(
    r.immediate.flatMap((x, i) => (x ? [i] : [])),
    [1, 3, 5, 8, 9, 10],
  );
  t.equal(r.bits[11], QualityIssue.OUT_OF_ORDER);
  t.end();
});

void t.test('a window-end record counts as reporting the state', (t) => {
  // window of 5: the change on tick 4 is held back by the rate limit, then carried by the window end
  const q = checker({ qualityWindowTicks: 5, qualityImmediateIntervalUs: 100_000 });
  const r = drive(q, [
    { issue: 'none', dtUs: 0 },
    { issue: 'crossed', dtUs: 1_000 }, // immediate
    { issue: 'none', dtUs: 1_000 }, // held back
    { issue: 'crossed', dtUs: 1_000 }, // same as reported: nothing pending
    { issue: 'none', dtUs: 1_000 }, // held back … and tick 4 ends the window: reported as clean
    { issue: 'none', dtUs: 200_000 }, // clean = last reported: nothing
    { issue: 'crossed', dtUs: 1_000 }, // change, interval long passed → immediate
  ]);
  t.same(
    r.immediate.flatMap((x, i) => (x ? [i] : [])),
    [1, 6],
  );
  t.same(
    r.windowEnd.flatMap((x, i) => (x ? [i] : [])),
    [4],
  );
  t.end();
});

/** The emission rule, restated naively over plain arrays (the reference model). */
function referenceEmissions(
  bits: readonly number[],
  tickTs: readonly number[],
  windowTicks: number,
  intervalUs: number,
): { immediate: boolean[]; windowEnd: boolean[] } {
  const immediate: boolean[] = [];
  const windowEnd: boolean[] = [];
  let reported = 0;
  let lastImmediate = -Infinity;
  let newest = -Infinity;
  let inWindow = 0;
  for (let i = 0; i < bits.length; i++) {
    newest = Math.max(newest, tickTs[i]!);
    const imm = bits[i] !== reported && newest - lastImmediate >= intervalUs;
    if (imm) {
      lastImmediate = newest;
      reported = bits[i]!;
    }
    inWindow++;
    const win = inWindow === windowTicks;
    if (win) {
      inWindow = 0;
      reported = bits[i]!;
    }
    immediate.push(imm);
    windowEnd.push(win);
  }
  return { immediate, windowEnd };
}

void t.test('emissions match a naive model of the rule exactly (property)', (t) => {
  const scripted = fc.record({
    issue: fc.constantFrom<Scripted['issue'][]>(
      'none',
      'none',
      'none',
      'gap',
      'crossed',
      'stale',
      'late',
      'gap+crossed',
    ),
    dtUs: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 300_000 })),
  });
  fc.assert(
    fc.property(
      fc.array(scripted, { minLength: 1, maxLength: 400 }),
      fc.integer({ min: 1, max: 60 }),
      fc.constantFrom(0, 1, 1_000, 50_000, 100_000, 1_000_000),
      (script, windowTicks, intervalUs) => {
        const q = checker({
          qualityWindowTicks: windowTicks,
          qualityImmediateIntervalUs: intervalUs,
        });
        const r = drive(q, script);
        // the exchange time of each tick, as drive() made it
        let ts = T0;
        const tickTs = script.map((k) => {
          ts += k.dtUs;
          return k.issue === 'late' ? ts - 1_000_000 : ts;
        });
        const want = referenceEmissions(r.bits, tickTs, windowTicks, intervalUs);
        const idx = (xs: boolean[]): number[] => xs.flatMap((x, i) => (x ? [i] : []));
        return (
          JSON.stringify(idx(r.immediate)) === JSON.stringify(idx(want.immediate)) &&
          JSON.stringify(idx(r.windowEnd)) === JSON.stringify(idx(want.windowEnd))
        );
      },
    ),
    { numRuns: 2_000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('bad options are rejected naming the key', (t) => {
  t.throws(() => checker({ qualityWindowTicks: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /qualityWindowTicks/,
  });
  t.throws(() => checker({ staleUs: -1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /staleUs/,
  });
  t.throws(() => checker({ spikeK: NaN }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /spikeK/,
  });
  t.throws(() => checker({ qualityImmediateIntervalUs: Infinity }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /qualityImmediateIntervalUs/,
  });
  t.end();
});
