import fc from 'fast-check';
import t, { type Test } from 'tap';
import { ReturnWindow } from '../../actors/return-window.js';
import {
  DEFAULT_RISK_LIMITS,
  RateWindow,
  accountVarRule,
  intervalWidth,
  killSwitchRule,
  maxNotionalRule,
  maxPositionRule,
  minQualityRule,
  newRiskState,
  rateLimitRule,
  resolveRiskLimits,
  sizeByInterval,
  symbolVarRule,
  type RiskLimits,
  type RiskState,
} from '../../actors/risk-rules.js';
import { ErrorCodes } from '../../kernel/errors.js';
import type { SignalMessage } from '../../kernel/messages.js';

export function signal(over: Partial<SignalMessage> = {}): SignalMessage {
  return {
    id: 'mom:BTC-USD:1',
    strategy: 'mom',
    sym: 'BTC-USD',
    ts: 1,
    side: 'buy',
    strength: 0.5,
    refPx: 100,
    qty: 10,
    account: 'acc',
    model: { name: 'baseline', version: '1' },
    prediction: { score: 0.5 },
    quality: { score: 1 },
    src: { seq: 1, ts: 1 },
    lat: { recv: 0, feat: 0, infer: 0 },
    ...over,
  };
}

const L = DEFAULT_RISK_LIMITS;

void t.test('kill switch', (t) => {
  const s = newRiskState();
  t.equal(killSwitchRule(signal(), s, L, 0), null);
  s.killed = true;
  s.killedBy = 'ops';
  s.killReason = 'drill';
  t.same(killSwitchRule(signal(), s, L, 0), {
    reason: 'kill_switch',
    detail: 'killed by ops: drill',
  });
  t.end();
});

void t.test('max position: signed qty, flat never breaches, reducing passes', (t) => {
  const s = newRiskState();
  const lim = { ...L, maxPosition: 100 };
  s.positions.set('BTC-USD', 95);
  t.equal(maxPositionRule(signal({ qty: 5 }), s, lim, 0), null, '95 + 5 = 100 is at the limit');
  t.equal(maxPositionRule(signal({ qty: 6 }), s, lim, 0)?.reason, 'max_position');
  t.match(maxPositionRule(signal({ qty: 6 }), s, lim, 0)?.detail, /101/);
  t.equal(maxPositionRule(signal({ side: 'sell', qty: 195 }), s, lim, 0), null, '95 − 195 = −100');
  t.equal(maxPositionRule(signal({ side: 'sell', qty: 196 }), s, lim, 0)?.reason, 'max_position');
  t.equal(maxPositionRule(signal({ side: 'flat', qty: 1e9 }), s, lim, 0), null, 'flat');
  s.positions.set('BTC-USD', 150);
  t.equal(
    maxPositionRule(signal({ side: 'sell', qty: 10 }), s, lim, 0),
    null,
    'reducing an over-limit position',
  );
  t.end();
});

void t.test('max notional', (t) => {
  const s = newRiskState();
  const lim = { ...L, maxNotional: 1000 };
  t.equal(maxNotionalRule(signal({ qty: 10, refPx: 100 }), s, lim, 0), null);
  t.equal(maxNotionalRule(signal({ qty: 10, refPx: 100.01 }), s, lim, 0)?.reason, 'max_notional');
  t.equal(maxNotionalRule(signal({ side: 'flat', qty: 1e9 }), s, lim, 0), null, 'flat');
  t.end();
});

void t.test('rate limit reads the approval window', (t) => {
  const s = newRiskState();
  const lim = { ...L, maxSignalsPerSec: 2 };
  t.equal(rateLimitRule(signal(), s, lim, 0), null, 'no history');
  const w = new RateWindow(2);
  s.rates.set('BTC-USD', w);
  w.record(0);
  w.record(500_000);
  t.equal(rateLimitRule(signal(), s, lim, 999_999)?.reason, 'rate_limit');
  t.match(rateLimitRule(signal(), s, lim, 999_999)?.detail, /2 signals/);
  t.equal(rateLimitRule(signal(), s, lim, 1_000_000), null, 'the oldest is 1 s old');
  t.equal(rateLimitRule(signal({ sym: 'ETH-USD' }), s, lim, 999_999), null, 'per symbol');
  t.end();
});

void t.test('min quality', (t) => {
  const s = newRiskState();
  t.equal(minQualityRule(signal({ quality: { score: 0.5 } }), s, L, 0), null);
  t.equal(minQualityRule(signal({ quality: { score: 0.49 } }), s, L, 0)?.reason, 'quality_low');
  t.equal(minQualityRule(signal({ quality: { score: NaN } }), s, L, 0)?.reason, 'quality_low');
  t.end();
});

void t.test('limits: defaults and validation naming the key', (t) => {
  t.same(resolveRiskLimits(undefined), {
    maxPosition: 100,
    maxNotional: 1e7,
    maxSignalsPerSec: 50,
    minQuality: 0.5,
    maxSymbolVar: Infinity,
    maxAccountVar: Infinity,
    varMethod: 'historical',
    varConfidence: 0.99,
    varWindow: 250,
    varMinObservations: 30,
    maxIntervalWidth: Infinity,
    minSizeFactor: 0.25,
  });
  t.equal(resolveRiskLimits({ maxPosition: 5 }).maxPosition, 5);
  t.equal(resolveRiskLimits({ varMethod: 'parametric' }).varMethod, 'parametric');
  t.equal(resolveRiskLimits({ varWindow: 10, varMinObservations: 10 }).varWindow, 10);
  for (const [k, v] of [
    ['maxPosition', -1],
    ['maxNotional', Infinity],
    ['maxSignalsPerSec', 0],
    ['maxSignalsPerSec', 1.5],
    ['minQuality', 1.1],
    ['maxSymbolVar', 0],
    ['maxAccountVar', 'x'],
    ['maxIntervalWidth', NaN],
    ['varMethod', 'monte-carlo'],
    ['varConfidence', 1],
    ['varConfidence', 0.5],
    ['varWindow', 1],
    ['varWindow', 100.5],
    ['varWindow', 1e6],
    ['varMinObservations', 1],
    ['varMinObservations', 251],
    ['minSizeFactor', 0],
    ['minSizeFactor', 1.5],
    ['bogus', 1],
  ] as const) {
    t.throws(() => resolveRiskLimits({ [k]: v }), {
      code: ErrorCodes.INVALID_ARGUMENT,
      message: new RegExp(`invalid ${k}`),
    });
  }
  t.end();
});

// ───────────────────────── Value-at-Risk and sizing ─────────────────────────

/** Ten returns, oldest first: sum 0, squares sum 0.007; sorted −0.05 −0.03 −0.02 −0.01 0 … 0.04. */
const R = [0.01, -0.02, 0.03, -0.05, 0, 0.02, -0.01, 0.04, -0.03, 0.01];

/** A window whose returns are `rs` (oldest first), from prices starting at px0. */
function windowOf(rs: readonly number[], px0 = 100, size = rs.length): ReturnWindow {
  const w = new ReturnWindow(size);
  let px = px0;
  w.observe(px, 0);
  for (const r of rs) {
    px *= Math.exp(r);
    w.observe(px, 0);
  }
  return w;
}

function varLimits(over: Partial<RiskLimits>): RiskLimits {
  return { ...L, varWindow: 10, varMinObservations: 10, varConfidence: 0.9, ...over };
}

function near(t: Test, got: number, want: number, msg: string): void {
  t.ok(Math.abs(got - want) < 1e-9, `${msg}: ${got} ≈ ${want}`);
}

/** The number in a breach detail after `= ` (the VaR the rule computed). */
function varIn(detail: string | undefined): number {
  return Number(/= (\S+)/.exec(detail ?? '')?.[1]);
}

void t.test(
  'symbol VaR, historical, by hand: |next| × refPx × the ⌈n·0.1⌉-th worst return',
  (t) => {
    const s = newRiskState(10);
    s.returns.set('BTC-USD', windowOf(R));
    // buy 10 at 100 from flat: exposure 1000; worst return −0.05 → VaR 50.
    const at50 = symbolVarRule(signal({ qty: 10 }), s, varLimits({ maxSymbolVar: 49.99 }), 0);
    t.equal(at50?.reason, 'var_symbol');
    near(t, varIn(at50?.detail), 50, 'VaR of +10 × 100');
    t.match(at50?.detail, /historical VaR 0\.9 of position 10 × 100 over 10 returns/);
    t.equal(symbolVarRule(signal({ qty: 10 }), s, varLimits({ maxSymbolVar: 50.01 }), 0), null);
    // 0.8: the 2nd worst, −0.03 → 30
    const at80 = symbolVarRule(
      signal({ qty: 10 }),
      s,
      varLimits({ maxSymbolVar: 1, varConfidence: 0.8 }),
      0,
    );
    near(t, varIn(at80?.detail), 30, '2nd worst at 0.8');
    // Short 10: loses on up moves; the worst is +0.04 → 40.
    const short = symbolVarRule(
      signal({ side: 'sell', qty: 10 }),
      s,
      varLimits({ maxSymbolVar: 1 }),
      0,
    );
    near(t, varIn(short?.detail), 40, 'a short loses on the best return');
    // The position after the fill: 5 held + buy 5 = 10.
    s.positions.set('BTC-USD', 5);
    near(
      t,
      varIn(symbolVarRule(signal({ qty: 5 }), s, varLimits({ maxSymbolVar: 1 }), 0)?.detail),
      50,
      'held + qty',
    );
    t.equal(s.varSkipped.symbol, 0);
    t.end();
  },
);

void t.test('symbol VaR, parametric, by hand: z(0.99) × σ × exposure', (t) => {
  const s = newRiskState(10);
  s.returns.set('BTC-USD', windowOf(R));
  const want = 1000 * 2.3263478740408408 * Math.sqrt(0.007 / 9); // 64.88…
  const lim = varLimits({ varMethod: 'parametric', varConfidence: 0.99, maxSymbolVar: 64 });
  const b = symbolVarRule(signal({ qty: 10 }), s, lim, 0);
  t.equal(b?.reason, 'var_symbol');
  t.ok(Math.abs(varIn(b?.detail) - want) < 1e-6, `${varIn(b?.detail)} ≈ ${want}`);
  t.equal(symbolVarRule(signal({ qty: 10 }), s, { ...lim, maxSymbolVar: 65 }, 0), null);
  t.equal(
    symbolVarRule(signal({ side: 'sell', qty: 10 }), s, lim, 0)?.reason,
    'var_symbol',
    'symmetric: a short has the same parametric VaR',
  );
  t.end();
});

void t.test(
  'symbol VaR: off by default, flat and reducing pass, too few returns pass and count',
  (t) => {
    const s = newRiskState(10);
    s.returns.set('BTC-USD', windowOf(R));
    t.equal(
      symbolVarRule(signal({ qty: 1e9 }), s, { ...L, varWindow: 10 }, 0),
      null,
      'default: off',
    );
    const lim = varLimits({ maxSymbolVar: 1 });
    t.equal(symbolVarRule(signal({ side: 'flat', qty: 10 }), s, lim, 0), null, 'flat');
    s.positions.set('BTC-USD', 100);
    t.equal(symbolVarRule(signal({ side: 'sell', qty: 10 }), s, lim, 0), null, 'reducing');
    t.equal(s.varSkipped.symbol, 0);
    s.positions.clear();
    s.returns.set('BTC-USD', windowOf(R.slice(1))); // 9 < varMinObservations 10
    t.equal(symbolVarRule(signal({ qty: 10 }), s, lim, 0), null, '9 returns: passes');
    t.equal(symbolVarRule(signal({ sym: 'ETH-USD', qty: 10 }), s, lim, 0), null, 'never observed');
    t.equal(s.varSkipped.symbol, 2, 'both counted');
    t.end();
  },
);

void t.test('account VaR by hand: aligned P&Ls of every position after the fill', (t) => {
  const s = newRiskState(10);
  s.returns.set('A', windowOf(R, 100)); // lastPx 100 × e^0 = 100
  s.positions.set('A', 10); // alone: 1000 · r → historical 0.9 VaR 50
  const same = windowOf(R, 200);
  const opposite = windowOf(
    R.map((r) => -r),
    200,
  );
  const lim = varLimits({ maxAccountVar: 60 });
  const buyB = signal({ sym: 'B', qty: 5, refPx: 200 }); // exposure 1000
  // B moves with A: P&L 2000 · r → VaR 100 > 60, and above 50 before.
  s.returns.set('B', same);
  const b = accountVarRule(buyB, s, lim, 0);
  t.equal(b?.reason, 'var_account');
  near(t, varIn(b?.detail), 100, 'correlated: 2000 × 0.05');
  near(t, Number(/\(before (\S+)\)/.exec(b?.detail ?? '')?.[1]), 50, 'before: A alone');
  // B moves against A: P&L 0 → VaR 0.
  s.returns.set('B', opposite);
  t.equal(accountVarRule(buyB, s, lim, 0), null, 'a perfect hedge');
  // Over the limit, but lower than before: passes. A 20 (VaR 100), buy 2.5 B against it → 75.
  s.positions.set('A', 20);
  t.equal(accountVarRule(signal({ sym: 'B', qty: 2.5, refPx: 200 }), s, lim, 0), null, 'reduces');
  // Not a hedge: same-direction B raises it from 100 to 125.
  s.returns.set('B', same);
  near(
    t,
    varIn(accountVarRule(signal({ sym: 'B', qty: 2.5, refPx: 200 }), s, lim, 0)?.detail),
    125,
    'raises',
  );
  // Parametric = z · stdev of the summed P&Ls (the sample covariance): 2500 · z · σ.
  const p = accountVarRule(
    signal({ sym: 'B', qty: 2.5, refPx: 200 }),
    s,
    { ...lim, varMethod: 'parametric', varConfidence: 0.99 },
    0,
  );
  t.ok(Math.abs(varIn(p?.detail) - 2500 * 2.3263478740408408 * Math.sqrt(0.007 / 9)) < 1e-6);
  t.end();
});

void t.test(
  'account VaR: the common window, too few returns pass and count, off by default',
  (t) => {
    const s = newRiskState(10);
    s.returns.set('A', windowOf(R, 100));
    s.positions.set('A', 10);
    t.equal(accountVarRule(signal({ sym: 'A', qty: 1e9 }), s, { ...L, varWindow: 10 }, 0), null);
    const lim = varLimits({ maxAccountVar: 1, varMinObservations: 3 });
    // B has only its 3 newest returns (0.04, −0.03, 0.01; same for A): the common window is 3.
    s.returns.set('B', windowOf(R.slice(7), 100));
    const b = accountVarRule(signal({ sym: 'B', qty: 10, refPx: 100 }), s, lim, 0);
    // P&L_i = 2000 · r_i over (0.01, −0.03, 0.04); 10% of 3 → the worst: −0.03 → 60
    near(t, varIn(b?.detail), 60, 'over the 3 aligned newest returns');
    s.returns.delete('B');
    t.equal(accountVarRule(signal({ sym: 'B', qty: 10 }), s, lim, 0), null, 'B unobserved');
    t.equal(s.varSkipped.account, 1);
    t.equal(accountVarRule(signal({ sym: 'A', side: 'flat' }), s, lim, 0), null, 'flat');
    t.end();
  },
);

/** Naive reference of accountVarRule's VaR: arrays, sort, reduce. */
function naiveAccountVar(
  positions: Record<string, number>,
  rets: Record<string, number[]>,
  px: Record<string, number>,
  c: number,
): number {
  const held = Object.keys(positions).filter((k) => positions[k] !== 0);
  if (held.length === 0) return 0;
  const n = Math.min(...held.map((k) => rets[k]!.length));
  const pnl: number[] = [];
  for (let i = 0; i < n; i++) {
    // i-th newest return of each symbol
    pnl.push(
      held.reduce((a, k) => a + positions[k]! * px[k]! * rets[k]![rets[k]!.length - 1 - i]!, 0),
    );
  }
  const sorted = [...pnl].sort((a, b) => a - b);
  const k = Math.max(1, Math.ceil(n * (1 - c) - 1e-9));
  return Math.max(0, -sorted[k - 1]!);
}

void t.test('property: symbol and account VaR rules agree with a naive reference', (t) => {
  const retArb = fc.array(fc.double({ min: -0.1, max: 0.1, noNaN: true }), {
    minLength: 5,
    maxLength: 40,
  });
  fc.assert(
    fc.property(
      fc.record({ A: retArb, B: retArb, C: retArb }),
      fc.record({
        A: fc.integer({ min: -20, max: 20 }),
        B: fc.integer({ min: -20, max: 20 }),
        C: fc.integer({ min: -20, max: 20 }),
      }),
      fc.constantFrom('A', 'B', 'C'),
      fc.constantFrom('buy' as const, 'sell' as const),
      fc.integer({ min: 1, max: 20 }),
      fc.double({ min: 0.55, max: 0.99, noNaN: true }),
      fc.double({ min: 0.01, max: 200, noNaN: true }),
      (rets, pos, sym, side, qty, c, max) => {
        const s: RiskState = newRiskState(40);
        const px: Record<string, number> = {};
        for (const k of ['A', 'B', 'C'] as const) {
          const w = windowOf(rets[k], 100, 40);
          s.returns.set(k, w);
          s.positions.set(k, pos[k]);
          px[k] = w.lastPx;
        }
        // Returns as the window holds them (ln of the prices: within 1e-15 of rets).
        const held: Record<string, number[]> = {};
        for (const k of ['A', 'B', 'C']) {
          const w = s.returns.get(k)!;
          held[k] = Array.from({ length: w.count }, (_, i) => w.at(w.count - 1 - i));
        }
        const lim = varLimits({ varWindow: 40, varMinObservations: 5, varConfidence: c });
        const refPx = 100;
        const next = pos[sym] + (side === 'buy' ? qty : -qty);
        const sig = signal({ sym, side, qty, refPx });
        const tol = (v: number): number => 1e-9 * Math.max(1, v);
        // symbol
        const wantSym = naiveAccountVar({ [sym]: next }, held, { [sym]: refPx }, c);
        const gotSym = symbolVarRule(sig, s, { ...lim, maxSymbolVar: max }, 0);
        const reducing = Math.abs(next) < Math.abs(pos[sym]);
        if (!reducing && Math.abs(wantSym - max) > tol(max)) {
          if ((gotSym !== null) !== wantSym > max) return false;
          if (gotSym !== null && Math.abs(varIn(gotSym.detail) - wantSym) > tol(wantSym))
            return false;
        }
        if (reducing && gotSym !== null) return false;
        // account
        const after = naiveAccountVar({ ...pos, [sym]: next }, held, { ...px, [sym]: refPx }, c);
        const before = naiveAccountVar(pos, held, { ...px, [sym]: refPx }, c);
        const gotAcc = accountVarRule(sig, s, { ...lim, maxAccountVar: max }, 0);
        if (Math.abs(after - max) <= tol(max) || Math.abs(after - before) <= tol(after))
          return true;
        const wantReject = after > max && after > before;
        if ((gotAcc !== null) !== wantReject) return false;
        return gotAcc === null || Math.abs(varIn(gotAcc.detail) - after) <= tol(after);
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

void t.test('size by interval: clamp(1 − width / maxIntervalWidth, minSizeFactor, 1)', (t) => {
  const s = newRiskState();
  const lim = { ...L, maxIntervalWidth: 1, minSizeFactor: 0.25 };
  const withIv = (lower: number, upper: number): SignalMessage =>
    signal({
      prediction: { score: 0.5, interval: { lower, upper } },
    });
  t.equal(sizeByInterval(withIv(0.1, 0.5), s, lim, 0), 0.6, 'width 0.4');
  t.equal(sizeByInterval(withIv(-0.5, 0.4), s, lim, 0), 0.25, 'width 0.9 → 0.1, clamped up');
  t.equal(sizeByInterval(withIv(0.3, 0.3), s, lim, 0), 1, 'width 0');
  t.equal(sizeByInterval(withIv(0.5, 0.3), s, lim, 0), 1, 'inverted: ≤ 1');
  t.equal(sizeByInterval(withIv(0.1, 0.5), s, L, 0), 1, 'default: off');
  t.equal(sizeByInterval(signal(), s, lim, 0), 1, 'no interval anywhere');
  // No interval on the signal: the symbol's last observed one.
  const w = new ReturnWindow(4);
  w.lower = -0.2;
  w.upper = 0.3;
  s.returns.set('BTC-USD', w);
  t.equal(intervalWidth(signal(), s), 0.5);
  t.equal(sizeByInterval(signal(), s, lim, 0), 0.5, 'observed width 0.5');
  t.equal(sizeByInterval(withIv(0.1, 0.2), s, lim, 0), 0.9, "the signal's own wins");
  w.lower = Number.NaN;
  t.equal(sizeByInterval(signal(), s, lim, 0), 1, 'model without interval: NaN bounds');
  t.end();
});
