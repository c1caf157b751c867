import t from 'tap';
import {
  OutputLayout,
  QualityEventKind,
  QualityIssue,
  QUALITY_ISSUE_NAMES,
} from '../../actors/output-layout.js';
import {
  DEFAULT_QUALITY_OPTIONS,
  QUALITY_CHECK_NAMES,
  QualityChecker,
  type QualityOptions,
} from '../../actors/quality-checker.js';
import { ErrorCodes } from '../../kernel/errors.js';

const T = 1_700_000_000_000_000;
const I = QualityIssue;
/** 2⁻⁷: with a quote 127 / 129 (mid 128) the band tolerance is exactly 1, the band [126, 130]. */
const TOL = 2 ** -7;

interface TickOpts {
  /** seq step from the last tick (1: in order). */
  dSeq?: number;
  /** exchange-time step from the last tick, µs. */
  dt?: number;
  /** recv − ts, µs. */
  lag?: number;
}

/**
 * Feeds one symbol's ticks, seq +1 and 1 ms apart by default, received 100 µs
 * after their exchange time; quotes 127 / 129 by default.
 */
class Feed {
  seq = 1000;
  ts = T;
  constructor(readonly q: QualityChecker) {}

  private step(o: TickOpts): void {
    this.seq += o.dSeq ?? 1;
    this.ts += o.dt ?? 1_000;
  }

  quote(o: TickOpts & { bid?: number; ask?: number } = {}): number {
    this.step(o);
    return this.q.checkQuote(
      this.seq,
      this.ts,
      this.ts + (o.lag ?? 100),
      o.bid ?? 127,
      5,
      o.ask ?? 129,
      5,
    );
  }

  trade(
    o: TickOpts & { px?: number; qty?: number; prevPx?: number; vol?: number; warm?: boolean } = {},
  ): number {
    this.step(o);
    return this.q.checkTrade(
      this.seq,
      this.ts,
      this.ts + (o.lag ?? 100),
      o.px ?? 128,
      o.qty ?? 1,
      o.prevPx ?? 0,
      o.vol ?? 0,
      o.warm ?? false,
    );
  }

  /** `n` clean quotes `dt` apart. */
  quotes(n: number, dt = 1_000): void {
    for (let i = 0; i < n; i++) {
      const b = this.quote({ dt });
      if (b !== 0) throw new Error(`warm-up quote ${i} raised ${b}`);
    }
  }
}

const feed = (o: Partial<QualityOptions> = {}): Feed => new Feed(new QualityChecker(o));

/** The window counter of each check. */
const COUNTER: Record<string, (q: QualityChecker) => number> = {
  seq_gap: (q) => q.gaps,
  out_of_order: (q) => q.outOfOrder,
  crossed_quote: (q) => q.crossed,
  bad_value: (q) => q.badValues,
  stale: (q) => q.stale,
  spike: (q) => q.spikes,
  locked_quote: (q) => q.locked,
  outside_band: (q) => q.outsideBand,
  time_gap: (q) => q.timeGaps,
  skew: (q) => q.skew,
  duplicate: (q) => q.duplicates,
};

/**
 * One crafted case per check: `hit` sets the stream up and returns the bits of
 * the tick that has exactly that issue; `miss` the same with a near miss.
 * `weight` is the tick's weight in the score (seq_gap: 0, its 2 missing seqs count).
 */
interface Case {
  check: string;
  bit: number;
  weight: number;
  options?: Partial<QualityOptions>;
  hit: (f: Feed) => number;
  miss: Array<[what: string, run: (f: Feed) => number]>;
}

const CASES: Case[] = [
  {
    check: 'seq_gap',
    bit: I.SEQ_GAP,
    weight: 0,
    hit: (f) => (f.quote(), f.quote({ dSeq: 3 })),
    miss: [['next seq', (f) => (f.quote(), f.quote({ dSeq: 1 }))]],
  },
  {
    check: 'duplicate',
    bit: I.DUPLICATE,
    weight: 1,
    hit: (f) => (f.quote(), f.quote({ dSeq: 0 })),
    miss: [['next seq', (f) => (f.quote(), f.quote({ dSeq: 1 }))]],
  },
  {
    check: 'out_of_order',
    bit: I.OUT_OF_ORDER,
    weight: 1,
    hit: (f) => (f.quote(), f.quote({ dSeq: -1 })),
    miss: [['same time, next seq', (f) => (f.quote(), f.quote({ dt: 0 }))]],
  },
  {
    check: 'crossed_quote',
    bit: I.CROSSED_QUOTE,
    weight: 1,
    hit: (f) => f.quote({ bid: 129.01, ask: 129 }),
    miss: [['bid < ask', (f) => f.quote({ bid: 128.99, ask: 129 })]],
  },
  {
    check: 'locked_quote',
    bit: I.LOCKED_QUOTE,
    weight: 0.5,
    hit: (f) => f.quote({ bid: 129, ask: 129 }),
    miss: [['bid < ask by a tick', (f) => f.quote({ bid: 128.99, ask: 129 })]],
  },
  {
    check: 'stale',
    bit: I.STALE,
    weight: 0.5,
    hit: (f) => f.quote({ lag: 5_000_001 }),
    miss: [['lag = staleUs', (f) => f.quote({ lag: 5_000_000 })]],
  },
  {
    check: 'skew',
    bit: I.SKEW,
    weight: 0.5,
    hit: (f) => f.quote({ lag: -250_001 }),
    miss: [
      ['recv before ts by maxSkewUs', (f) => f.quote({ lag: -250_000 })],
      ['recv = ts', (f) => f.quote({ lag: 0 })],
    ],
  },
  {
    check: 'spike',
    bit: I.SPIKE,
    weight: 0.5,
    hit: (f) => f.trade({ px: 110, prevPx: 100, vol: 0.001, warm: true }),
    miss: [
      ['|r| < 8 vol', (f) => f.trade({ px: 100.5, prevPx: 100, vol: 0.001, warm: true })],
      ['not warm', (f) => f.trade({ px: 110, prevPx: 100, vol: 0.001, warm: false })],
    ],
  },
  {
    check: 'outside_band',
    bit: I.OUTSIDE_BAND,
    weight: 0.5,
    options: { bandTolerance: TOL },
    hit: (f) => (f.quote(), f.trade({ px: 130.0001 })),
    miss: [
      ['at ask + tol', (f) => (f.quote(), f.trade({ px: 130 }))],
      ['at bid − tol', (f) => (f.quote(), f.trade({ px: 126 }))],
      ['no quote yet', (f) => f.trade({ px: 1000 })],
      ['quote older than 1 s', (f) => (f.quote(), f.trade({ px: 1000, dt: 1_000_001 }))],
    ],
  },
  {
    check: 'time_gap',
    bit: I.TIME_GAP,
    weight: 0.5,
    hit: (f) => (f.quotes(21, 10_000), f.quote({ dt: 1_000_001 })),
    miss: [
      ['Δts = timeGapMinUs', (f) => (f.quotes(21, 10_000), f.quote({ dt: 1_000_000 }))],
      ['only 19 intervals seen', (f) => (f.quotes(20, 10_000), f.quote({ dt: 5_000_000 }))],
    ],
  },
];

void t.test('each check raises exactly its bit, and not on a near miss', (t) => {
  for (const c of CASES) {
    const f = feed(c.options);
    t.equal(c.hit(f), c.bit, `${c.check}: exactly bit ${c.bit}`);
    const q = f.q;
    t.equal(COUNTER[c.check]!(q), c.check === 'seq_gap' ? 2 : 1, `${c.check}: counted`);
    t.equal(q.issueBits, c.bit, `${c.check}: the window's issue bits`);
    const denom = q.ticks + q.gaps;
    const want = 1 - (c.weight + q.gaps) / denom;
    t.equal(q.score, want, `${c.check}: score 1 − (${c.weight} + ${q.gaps}) / ${denom}`);
    for (const [what, run] of c.miss) {
      const m = feed(c.options);
      t.equal(run(m), 0, `${c.check}, near miss (${what}): clean`);
      t.equal(m.q.score, 1);
    }
  }
  t.end();
});

void t.test('qualityDisabled: a disabled check is never raised, counted or scored', (t) => {
  for (const c of CASES) {
    const f = feed({ ...c.options, qualityDisabled: [c.check] });
    t.equal(c.hit(f), 0, `${c.check} disabled: the tick is clean`);
    const q = f.q;
    t.equal(COUNTER[c.check]!(q), 0, `${c.check} disabled: not counted`);
    t.equal(q.issueBits, 0);
    t.equal(q.quarantined, 0, `${c.check} disabled: not quarantined`);
    t.equal(q.score, 1, `${c.check} disabled: not scored`);
    // the other checks still work
    const g = feed({ ...c.options, qualityDisabled: [c.check] });
    const other = c.check === 'locked_quote' ? { bid: 130, ask: 129 } : { bid: 129, ask: 129 };
    t.not(g.quote(other), 0, `${c.check} disabled: the quote checks still run`);
  }
  // a tick with two issues keeps the enabled one
  const f = feed({ qualityDisabled: ['duplicate'] });
  f.quote();
  t.equal(
    f.quote({ dSeq: 0, dt: -5 }),
    I.OUT_OF_ORDER,
    'duplicate off: an older duplicate is out_of_order',
  );
  t.equal(f.q.duplicates, 0);
  t.equal(f.q.outOfOrder, 1);
  t.equal(f.q.quarantined, 1);
  t.end();
});

void t.test('qualityDisabled: seq_gap off neither counts nor scores the missing seqs', (t) => {
  const f = feed({ qualityDisabled: ['seq_gap'] });
  f.quote();
  t.equal(f.quote({ dSeq: 11 }), 0, 'the bit is masked');
  t.equal(f.q.gaps, 0, 'no missing seqs counted');
  t.equal(f.q.score, 1, 'score 1 (is 1 − 10 / 12)');
  const p = new Float64Array(57);
  f.q.writePayload(p);
  t.equal(p[OutputLayout.quality.GAPS], 0);
  t.end();
});

void t.test('duplicate vs out_of_order', (t) => {
  const q = new QualityChecker();
  const tr = (seq: number, ts: number): number =>
    q.checkTrade(seq, ts, ts + 10, 100, 1, 0, 0, false);
  t.equal(tr(10, T), 0, 'first tick');
  t.equal(tr(10, T), I.DUPLICATE, 'same seq, same time: duplicate');
  t.equal(tr(10, T + 1), I.DUPLICATE, 'same seq, later: duplicate');
  t.equal(tr(10, T - 1), I.DUPLICATE | I.OUT_OF_ORDER, 'same seq, older time: both');
  t.equal(tr(9, T + 2), I.OUT_OF_ORDER, 'one below: out of order, not a duplicate');
  t.equal(tr(11, T + 3), 0, 'the last seq is still 10');
  t.equal(
    q.checkQuote(11, T + 4, T + 10, 99, 1, 101, 1),
    I.DUPLICATE,
    'trades and quotes share seq: a quote repeating a trade seq is a duplicate',
  );
  t.equal(tr(12, T + 5), 0);
  t.equal(q.duplicates, 4);
  t.equal(q.outOfOrder, 2);
  t.equal(q.quarantined, 5, 'duplicate and out of order are quarantined by default');
  t.equal(q.score, 1 - 5 / 8);
  t.end();
});

void t.test('seq reset: a new session', (t) => {
  const f = feed();
  f.seq = 5000;
  f.quotes(3); // 5001 … 5003
  t.equal(f.q.session, 0);
  f.seq = 0;
  t.equal(f.quote(), I.SEQ_RESET, 'seq 1 after 5003, later time: a reset, nothing else');
  t.equal(f.q.session, 1, 'session 1');
  t.equal(f.q.resets, 1);
  t.notOk(f.q.quarantine(I.SEQ_RESET), 'a reset is not quarantined');
  t.same([f.quote(), f.quote(), f.quote()], [0, 0, 0], 'seqs 2, 3, 4 are clean');
  t.equal(f.quote({ dSeq: 3 }), I.SEQ_GAP, 'seq 7: a gap in the new session');
  t.equal(f.q.gaps, 2);
  t.equal(f.quote({ dSeq: 0 }), I.DUPLICATE, 'and a duplicate of 7');
  t.equal(f.quote(), 0, 'seq 8');
  t.equal(f.q.session, 1);
  t.equal(f.q.ticks, 10);
  t.equal(f.q.score, 1 - (1 + 2) / (10 + 2), 'the reset weighs 0, the duplicate 1, the gap 2');
  const p = new Float64Array(57);
  f.q.writePayload(p);
  t.equal(p[OutputLayout.quality.SESSION], 1);
  t.equal(p[OutputLayout.quality.RESETS], 1);
  f.q.resetWindow();
  t.equal(f.q.resets, 0, 'resets are per window …');
  t.equal(f.q.session, 1, '… the session is not');
  f.seq = 300;
  f.quote();
  f.seq = 0;
  t.equal(f.quote(), I.SEQ_RESET, 'a second reset');
  t.equal(f.q.session, 2);
  t.end();
});

void t.test('seq reset: near misses are out of order', (t) => {
  /** A checker whose last tick had seq `last` at T; then `seq` at T + dt. */
  const after = (last: number, seq: number, dt = 1_000, o: Partial<QualityOptions> = {}) => {
    const q = new QualityChecker(o);
    q.checkQuote(last, T, T + 100, 99, 1, 101, 1);
    const bits = q.checkQuote(seq, T + dt, T + dt + 100, 99, 1, 101, 1);
    return { bits, session: q.session };
  };
  t.same(after(5000, 4998), { bits: I.OUT_OF_ORDER, session: 0 }, 'a small reorder');
  t.same(after(5000, 1, -1), { bits: I.OUT_OF_ORDER, session: 0 }, 'seq 1 with an older time');
  t.same(after(5000, 1, 0), { bits: I.OUT_OF_ORDER, session: 0 }, 'seq 1 at the same time');
  // resetSeqFloor 100: seq ≤ 100 and more than 100 below the last
  t.same(after(200, 100), { bits: I.OUT_OF_ORDER, session: 0 }, '100 below 200: not more than 100');
  t.same(after(201, 100), { bits: I.SEQ_RESET, session: 1 }, '101 below 201');
  t.same(after(5000, 101), { bits: I.OUT_OF_ORDER, session: 0 }, 'seq 101 > floor, drop < 10 000');
  // resetMinDrop 10 000: any seq at least that far below
  t.same(after(20_000, 10_001), { bits: I.OUT_OF_ORDER, session: 0 }, 'a drop of 9 999');
  t.same(after(20_000, 10_000), { bits: I.SEQ_RESET, session: 1 }, 'a drop of 10 000');
  // configured
  const o = { resetSeqFloor: 10, resetMinDrop: 50 };
  t.same(after(30, 5, 1_000, o), { bits: I.SEQ_RESET, session: 1 }, 'floor 10: 5 after 30');
  t.same(after(15, 5, 1_000, o), { bits: I.OUT_OF_ORDER, session: 0 }, 'floor 10: 5 after 15');
  t.same(after(100, 50, 1_000, o), { bits: I.SEQ_RESET, session: 1 }, 'min drop 50: 50 after 100');
  t.same(after(100, 51, 1_000, o), { bits: I.OUT_OF_ORDER, session: 0 }, 'a drop of 49');
  t.end();
});

void t.test('locked vs crossed quotes', (t) => {
  const f = feed();
  t.equal(f.quote({ bid: 100, ask: 100 }), I.LOCKED_QUOTE, 'bid = ask: locked');
  t.equal(f.quote({ bid: 100.01, ask: 100 }), I.CROSSED_QUOTE, 'bid > ask: crossed, not locked');
  t.equal(f.quote({ bid: 99.99, ask: 100 }), 0, 'bid < ask');
  t.same([f.q.locked, f.q.crossed], [1, 1]);
  t.equal(f.q.quarantined, 1, 'only the crossed quote is quarantined by default');
  t.equal(f.q.score, 1 - 1.5 / 3, 'locked 0.5, crossed 1');
  t.equal(f.quote({ bid: 0, ask: 0 }), I.BAD_VALUE | I.LOCKED_QUOTE, 'zero prices: bad and locked');
  t.end();
});

void t.test('outside band: the last good quote, at most 1 s old, ± tol', (t) => {
  const f = feed({ bandTolerance: TOL });
  f.quote(); // 127 / 129 at ts0: band [126, 130]
  const ts0 = f.ts;
  t.same(
    [128, 130, 126, 130.0001, 125.9999, 140, 1].map((px) => f.trade({ px, dt: 1 })),
    [0, 0, 0, I.OUTSIDE_BAND, I.OUTSIDE_BAND, I.OUTSIDE_BAND, I.OUTSIDE_BAND],
  );
  t.equal(f.trade({ px: 0 }), I.BAD_VALUE, 'a bad price is bad, not outside the band');
  // a crossed (quarantined) quote does not become the reference
  t.equal(f.quote({ bid: 200, ask: 199 }), I.CROSSED_QUOTE);
  t.equal(f.trade({ px: 128 }), 0, 'judged against 127 / 129, not 200 / 199');
  t.equal(f.trade({ px: 199.5 }), I.OUTSIDE_BAND);
  // age: the reference quote is at ts0
  f.ts = ts0 + 1_000_000 - 1;
  t.equal(f.trade({ px: 140, dt: 1 }), I.OUTSIDE_BAND, 'quote 1 s old: still used');
  t.equal(f.trade({ px: 140, dt: 1 }), 0, 'quote 1 s + 1 µs old: not used');
  t.equal(f.q.outsideBand, 6);
  t.equal(
    f.q.quarantined,
    2,
    'outside band is not quarantined by default (bad value, crossed are)',
  );
  // a locked quote is a reference (not quarantined by default) …
  f.quote({ bid: 128, ask: 128 });
  t.same(
    [129, 129.01, 127].map((px) => f.trade({ px })),
    [0, I.OUTSIDE_BAND, 0],
    'locked 128 / 128: band [127, 129]',
  );
  // … unless locked quotes are quarantined
  const g = feed({ bandTolerance: TOL, qualityQuarantine: ['locked_quote'] });
  g.quote();
  t.equal(g.quote({ bid: 140, ask: 140 }), I.LOCKED_QUOTE);
  t.equal(g.trade({ px: 129.5 }), 0, 'still judged against 127 / 129');
  t.equal(g.trade({ px: 139 }), I.OUTSIDE_BAND);
  // the default tolerance: 0.002 × mid
  const d = feed();
  d.quote({ bid: 99.9, ask: 100.1 }); // tol 0.2: band [99.7, 100.3]
  t.same(
    [100.25, 100.35, 99.75, 99.65].map((px) => d.trade({ px })),
    [0, I.OUTSIDE_BAND, 0, I.OUTSIDE_BAND],
  );
  t.end();
});

void t.test('time gap: after 20 intervals of warm-up, above both thresholds', (t) => {
  const gapAfter = (
    n: number,
    dt: number,
    gap: number,
    o: Partial<QualityOptions> = {},
  ): number => {
    const f = feed(o);
    f.quotes(n, dt);
    return f.quote({ dt: gap });
  };
  // 10 ms apart: 50 × mean = 0.5 s < timeGapMinUs 1 s, so 1 s decides
  t.equal(gapAfter(21, 10_000, 1_000_001), I.TIME_GAP, '21 ticks (20 intervals), then 1 s + 1 µs');
  t.equal(gapAfter(21, 10_000, 1_000_000), 0, 'exactly timeGapMinUs');
  t.equal(gapAfter(20, 10_000, 60_000_000), 0, 'after 20 ticks (19 intervals): warm-up');
  t.equal(gapAfter(200, 10_000, 1_000_001), I.TIME_GAP);
  // 100 ms apart: 50 × mean = 5 s decides
  t.equal(gapAfter(21, 100_000, 4_999_999), 0, '> 1 s but < 50 × mean');
  t.equal(gapAfter(21, 100_000, 5_000_000), 0, '= 50 × mean');
  t.equal(gapAfter(21, 100_000, 5_000_001), I.TIME_GAP);
  // configured
  const o = { timeGapK: 2, timeGapMinUs: 0 };
  t.equal(gapAfter(21, 10_000, 20_001, o), I.TIME_GAP, 'k 2, min 0: just above 2 × mean');
  t.equal(gapAfter(21, 10_000, 20_000, o), 0);
  t.equal(gapAfter(21, 10_000, 1e12, { timeGapK: 0 }), 0, 'k 0: off');
  // the gap's share of the mean is clamped, and ticks out of time order do not count
  const f = feed();
  f.quotes(21, 10_000);
  t.equal(f.quote({ dt: 10_000_000 }), I.TIME_GAP);
  t.equal(f.quote({ dt: -20_000_000 }), I.OUT_OF_ORDER, 'older than the newest: out of order only');
  f.ts += 20_000_000;
  t.equal(f.quote({ dt: 10_000 }), 0, 'back in time order, 10 ms after the newest');
  t.equal(
    f.quote({ dt: 10_000_000 }),
    I.TIME_GAP,
    'the mean did not absorb the gap: flagged again',
  );
  t.equal(f.q.timeGaps, 2);
  t.equal(f.q.quarantined, 1, 'a time gap is not quarantined by default');
  t.end();
});

void t.test('clock skew and staleness', (t) => {
  const f = feed();
  t.equal(f.quote({ lag: -250_001 }), I.SKEW, 'recv 250 ms + 1 µs before ts');
  t.equal(f.quote({ lag: -250_000 }), 0);
  t.equal(f.quote({ lag: 5_000_001 }), I.STALE);
  t.equal(f.quote({ lag: 5_000_000 }), 0);
  t.equal(f.q.skew, 1);
  t.equal(f.q.stale, 1);
  t.equal(f.q.quarantined, 0);
  t.equal(f.q.score, 1 - 1 / 4, 'each weighs 0.5');
  const z = feed({ maxSkewUs: 0 });
  t.equal(z.quote({ lag: -1 }), I.SKEW, 'maxSkewUs 0: any recv before ts');
  t.equal(z.quote({ lag: 0 }), 0);
  t.end();
});

void t.test('qualityQuarantine decides quarantine(bits); bad_value always', (t) => {
  const dflt = new QualityChecker();
  const held = QUALITY_ISSUE_NAMES.filter(([bit]) => dflt.quarantine(bit)).map(([, n]) => n);
  t.same(held, ['out_of_order', 'crossed_quote', 'bad_value', 'duplicate'], 'the default');
  t.same(DEFAULT_QUALITY_OPTIONS.qualityQuarantine, [
    'bad_value',
    'crossed_quote',
    'out_of_order',
    'duplicate',
  ]);
  t.notOk(dflt.quarantine(0));
  const mine = new QualityChecker({ qualityQuarantine: ['locked_quote', 'stale'] });
  t.same(
    QUALITY_ISSUE_NAMES.filter(([bit]) => mine.quarantine(bit)).map(([, n]) => n),
    ['bad_value', 'stale', 'locked_quote'],
    'configured, plus bad_value',
  );
  t.ok(mine.quarantine(I.SEQ_GAP | I.LOCKED_QUOTE), 'any held bit holds the tick');
  t.notOk(mine.quarantine(I.SEQ_GAP | I.CROSSED_QUOTE | I.DUPLICATE));
  const none = new QualityChecker({ qualityQuarantine: [] });
  t.same(
    QUALITY_ISSUE_NAMES.filter(([bit]) => none.quarantine(bit)).map(([, n]) => n),
    ['bad_value'],
    'an empty list: bad_value still',
  );
  // the quarantined counter follows the configuration
  const f = new Feed(mine);
  f.quote({ bid: 129, ask: 129 }); // locked: held
  f.quote({ bid: 130, ask: 129 }); // crossed: not held here
  f.quote({ lag: 6_000_000 }); // stale: held
  f.trade({ px: -1 }); // bad value: held
  t.equal(mine.quarantined, 3);
  t.equal(mine.crossed, 1);
  t.end();
});

void t.test('quarantineDue: at most one quarantine record per interval of exchange time', (t) => {
  const f = feed();
  const due = (dt: number): boolean => (f.quote({ dSeq: 0, dt }), f.q.quarantineDue());
  t.ok(due(0), 'the first');
  t.notOk(f.q.quarantineDue(), 'asked again at once: no');
  t.notOk(due(50_000));
  t.notOk(due(49_999), '99.999 ms after the first');
  t.ok(due(1), '100 ms after');
  t.notOk(due(-500_000), 'an older tick does not move time forward');
  t.notOk(due(99_999));
  t.ok(due(500_001), '100 ms after the newest time …');
  t.ok(f.q.immediateDue(I.DUPLICATE), '… and immediateDue has its own limit');
  t.ok(due(100_000));
  t.equal(f.q.quarantined, 7, 'every duplicate counted (the first tick had no predecessor)');
  const g = feed({ qualityImmediateIntervalUs: 0 });
  t.same(
    [0, 0, 0].map(() => (g.quote({ dt: 0 }), g.q.quarantineDue())),
    [true, true, true],
    'interval 0: every one',
  );
  t.end();
});

void t.test('countNonFinite: counted, in the state, not scored', (t) => {
  const f = feed();
  t.equal(f.quote({ bid: 129, ask: 129 }), I.LOCKED_QUOTE);
  t.equal(f.q.countNonFinite(3), I.LOCKED_QUOTE | I.NONFINITE, 'the tick state with nonfinite');
  t.equal(f.q.countNonFinite(2), I.LOCKED_QUOTE | I.NONFINITE);
  t.equal(f.q.nonfinite, 5);
  t.equal(f.q.issueBits, I.LOCKED_QUOTE | I.NONFINITE);
  t.equal(f.q.score, 1 - 0.5 / 1, 'only the locked quote weighs');
  t.equal(f.quote(), 0);
  t.equal(f.q.countNonFinite(1), I.NONFINITE, 'a clean tick with non-finite values');
  t.ok(f.q.immediateDue(I.NONFINITE), 'a change of state');
  t.equal(f.q.score, 1 - 0.5 / 2);
  const p = new Float64Array(57);
  f.q.writePayload(p);
  t.equal(p[OutputLayout.quality.NONFINITE], 6);
  t.equal(p[OutputLayout.quality.ISSUE_BITS], I.LOCKED_QUOTE | I.NONFINITE);
  f.q.resetWindow();
  t.equal(f.q.nonfinite, 0);
  t.equal(f.q.issueBits, 0);
  t.end();
});

void t.test('window score weights: the largest issue of a tick, gaps as bad ticks', (t) => {
  const f = feed({ bandTolerance: TOL });
  const bits = [
    f.quote(), // clean: 0
    f.quote({ bid: 129, ask: 129 }), // locked: 0.5
    f.quote({ lag: -300_000 }), // skew: 0.5
    f.quote({ bid: 130, ask: 129 }), // crossed: 1
    f.quote({ bid: 130, ask: 129, lag: 6_000_000 }), // crossed + stale: 1, not 1.5
    f.quote({ dSeq: 0, lag: 6_000_000 }), // duplicate + stale: 1
    f.trade({ px: 140, prevPx: 128, vol: 0.001, warm: true }), // spike + outside band: 0.5
    f.quote({ dSeq: 4 }), // a gap of 3: 0 on the tick, 3 bad ticks
  ];
  f.seq = 0;
  bits.push(f.quote()); // seq reset: 0
  f.q.countNonFinite(2); // 0
  t.same(bits, [
    0,
    I.LOCKED_QUOTE,
    I.SKEW,
    I.CROSSED_QUOTE,
    I.CROSSED_QUOTE | I.STALE,
    I.DUPLICATE | I.STALE,
    I.SPIKE | I.OUTSIDE_BAND,
    I.SEQ_GAP,
    I.SEQ_RESET,
  ]);
  t.equal(f.q.ticks, 9);
  t.equal(f.q.gaps, 3);
  t.equal(f.q.score, 1 - (0.5 + 0.5 + 1 + 1 + 1 + 0.5 + 3) / (9 + 3));
  f.q.resetWindow();
  t.equal(f.q.score, 1, 'an empty window scores 1');
  // missing seqs dominate a window
  const g = feed();
  g.quote();
  g.quote({ dSeq: 0 });
  g.quote({ dSeq: 1_000 });
  t.equal(g.q.score, 1 - (1 + 999) / (3 + 999));
  t.end();
});

void t.test('writePayload: every slot, KIND and SESSION', (t) => {
  const f = feed({ bandTolerance: TOL });
  f.seq = 500;
  f.quote();
  f.seq = 0;
  f.quote(); // reset: session 1
  f.quote({ dSeq: 3 }); // gap 2
  f.quote({ dSeq: 0 }); // duplicate
  f.quote({ dSeq: -1 }); // out of order
  f.quote({ dSeq: 2, bid: 130, ask: 129 }); // crossed (seq 5: the last seq is still 4)
  f.quote({ bid: 129, ask: 129 }); // locked
  f.quote({ lag: 6_000_000 }); // stale
  f.quote({ lag: -300_000 }); // skew
  f.trade({ px: 0 }); // bad value
  f.trade({ px: 200, prevPx: 128, vol: 0.001, warm: true }); // spike + outside band (vs 127 / 129)
  f.q.countNonFinite(4);
  const q = OutputLayout.quality;
  const p = new Float64Array(57).fill(7);
  f.q.writePayload(p);
  const want: Array<[keyof typeof q, number]> = [
    ['SCORE', 1 - (1 + 1 + 1 + 0.5 + 0.5 + 0.5 + 1 + 0.5 + 2) / (11 + 2)],
    ['TICKS', 11],
    ['GAPS', 2],
    ['CROSSED', 1],
    ['OUT_OF_ORDER', 1],
    ['STALE', 1],
    ['SPIKES', 1],
    [
      'ISSUE_BITS',
      I.SEQ_RESET |
        I.SEQ_GAP |
        I.DUPLICATE |
        I.OUT_OF_ORDER |
        I.CROSSED_QUOTE |
        I.LOCKED_QUOTE |
        I.STALE |
        I.SKEW |
        I.BAD_VALUE |
        I.SPIKE |
        I.OUTSIDE_BAND |
        I.NONFINITE,
    ],
    ['BAD_VALUES', 1],
    ['LOCKED', 1],
    ['OUTSIDE_BAND', 1],
    ['TIME_GAPS', 0],
    ['SKEW', 1],
    ['DUPLICATES', 1],
    ['RESETS', 1],
    ['QUARANTINED', 4],
    ['NONFINITE', 4],
    ['SESSION', 1],
    ['KIND', QualityEventKind.WINDOW],
  ];
  for (const [slot, v] of want) t.equal(p[q[slot]], v, `${slot} (slot ${q[slot]})`);
  const written = new Set<number>(want.map(([slot]) => q[slot]));
  const rest = Array.from(p).filter((_, i) => !written.has(i));
  t.same(rest, new Array<number>(57 - written.size).fill(0), 'every other slot zeroed');
  t.equal(written.size, 19, 'slots 0 … 18');
  f.q.writePayload(p, QualityEventKind.RESET);
  t.equal(p[q.KIND], 4, 'kind reset');
  f.q.writePayload(p, QualityEventKind.QUARANTINE);
  t.equal(p[q.KIND], 3);
  t.equal(p[q.RAW_SEQ], 0, 'the raw tick slots are the caller’s: zeroed here');
  f.q.resetWindow();
  f.q.writePayload(p, QualityEventKind.CHANGE);
  t.same(
    [p[q.SCORE], p[q.TICKS], p[q.ISSUE_BITS], p[q.SESSION], p[q.KIND]],
    [1, 0, 0, 1, 2],
    'a new window keeps the session',
  );
  t.end();
});

void t.test('check names and bad options', (t) => {
  t.same(QUALITY_CHECK_NAMES, [
    'seq_gap',
    'out_of_order',
    'crossed_quote',
    'bad_value',
    'stale',
    'spike',
    'locked_quote',
    'outside_band',
    'time_gap',
    'skew',
    'duplicate',
  ]);
  const bad: Array<[Partial<QualityOptions>, string]> = [
    [{ timeGapK: -1 }, 'timeGapK'],
    [{ timeGapK: Infinity }, 'timeGapK'],
    [{ timeGapMinUs: NaN }, 'timeGapMinUs'],
    [{ timeGapMinUs: -1 }, 'timeGapMinUs'],
    [{ bandTolerance: -0.001 }, 'bandTolerance'],
    [{ maxSkewUs: -1 }, 'maxSkewUs'],
    [{ resetSeqFloor: -1 }, 'resetSeqFloor'],
    [{ resetMinDrop: 0 }, 'resetMinDrop'],
    [{ staleUs: 0 }, 'staleUs'],
    [{ qualityImmediateIntervalUs: -1 }, 'qualityImmediateIntervalUs'],
    [{ qualityQuarantine: ['nope'] }, 'qualityQuarantine'],
    [{ qualityQuarantine: ['duplicate', 'duplicate'] }, 'qualityQuarantine'],
    [{ qualityQuarantine: ['seq_reset'] }, 'qualityQuarantine'],
    [{ qualityQuarantine: 'duplicate' as unknown as string[] }, 'qualityQuarantine'],
    [{ qualityDisabled: ['bad_value'] }, 'qualityDisabled'],
    [{ qualityDisabled: ['nonfinite'] }, 'qualityDisabled'],
    [{ qualityDisabled: ['seq_reset'] }, 'qualityDisabled'],
    [{ qualityDisabled: [3] as unknown as string[] }, 'qualityDisabled'],
  ];
  for (const [o, key] of bad) {
    t.throws(
      () => new QualityChecker(o),
      { code: ErrorCodes.INVALID_ARGUMENT, message: new RegExp(`^invalid ${key}:`) },
      `${JSON.stringify(o)} names ${key}`,
    );
  }
  for (const o of [
    { timeGapK: 0 },
    { timeGapMinUs: 0 },
    { bandTolerance: 0 },
    { maxSkewUs: 0 },
    { resetSeqFloor: 0 },
    { qualityQuarantine: [] },
    { qualityDisabled: ['seq_gap', 'time_gap', 'skew', 'outside_band', 'locked_quote'] },
  ]) {
    t.doesNotThrow(() => new QualityChecker(o), JSON.stringify(o));
  }
  t.end();
});
