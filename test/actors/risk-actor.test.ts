import fc from 'fast-check';
import t from 'tap';
import { RiskActor } from '../../actors/risk-actor.js';
import { ErrorCodes } from '../../kernel/errors.js';
import type { SignalMessage } from '../../kernel/messages.js';

let n = 0;
function signal(over: Partial<SignalMessage> = {}): SignalMessage {
  n++;
  return {
    id: `mom:BTC-USD:${n}`,
    strategy: 'mom',
    sym: 'BTC-USD',
    ts: n,
    side: 'buy',
    strength: 0.5,
    refPx: 100,
    qty: 1,
    account: 'acc',
    model: { name: 'baseline', version: '1' },
    prediction: { score: 0.5 },
    quality: { score: 1 },
    src: { seq: n, ts: n },
    lat: { recv: 0, feat: 0, infer: 0 },
    ...over,
  };
}

const sigArb = fc.record({
  sym: fc.constantFrom('A', 'B'),
  side: fc.constantFrom('buy' as const, 'sell' as const, 'flat' as const),
  qty: fc.double({ min: 0, max: 60, noNaN: true }),
  refPx: fc.double({ min: 1, max: 1e4, noNaN: true }),
  dtUs: fc.integer({ min: 0, max: 200_000 }),
});

void t.test(
  'approved + filled signals never take |position| over maxPosition or notional over maxNotional',
  (t) => {
    fc.assert(
      fc.property(
        fc.array(sigArb, { maxLength: 200 }),
        fc.integer({ min: 1, max: 200 }),
        (xs, maxPosition) => {
          const maxNotional = 50_000;
          const r = new RiskActor({ maxPosition, maxNotional, maxSignalsPerSec: 1000 });
          let now = 0;
          for (const x of xs) {
            now += x.dtUs;
            const s = signal(x);
            const d = r.check(s, now);
            if (d.approved && s.side !== 'flat') {
              const before = r.positions().get(s.sym) ?? 0;
              r.onFill({
                signalId: s.id,
                sym: s.sym,
                side: s.side,
                qty: s.qty,
                px: s.refPx,
                ts: now,
              });
              const pos = r.positions().get(s.sym)!;
              if (Math.abs(pos) > maxPosition + 1e-9) return false;
              // Notional is checked on what a fill adds: a price move alone can take an
              // existing position's notional over the limit (a zero-qty signal at a
              // higher price approved, seed 86295138), and reducing must stay possible.
              if (
                Math.abs(pos) > Math.abs(before) &&
                Math.abs(pos * s.refPx) > maxNotional * (1 + 1e-12)
              )
                return false;
            }
          }
          return true;
        },
      ),
    );
    t.pass('property held');
    t.end();
  },
);

void t.test(
  'a position over maxNotional after a price move: adding refused, reducing and zero qty pass',
  (t) => {
    const r = new RiskActor({ maxPosition: 1000, maxNotional: 50_000, maxSignalsPerSec: 1000 });
    const s = signal({ qty: 8, refPx: 1 });
    t.same(r.check(s, 0), { approved: true });
    r.onFill({ signalId: s.id, sym: 'BTC-USD', side: 'buy', qty: 8, px: 1, ts: 0 });
    // The price is now 10,000: the position of 8 is worth 80,000 > 50,000.
    const add = r.check(signal({ qty: 1, refPx: 10_000 }), 1);
    t.equal(add.approved, false, 'adding is refused');
    t.equal(add.approved ? '' : add.reason, 'max_notional');
    t.same(
      r.check(signal({ side: 'sell', qty: 1, refPx: 10_000 }), 2),
      { approved: true },
      'reducing passes',
    );
    t.same(
      r.check(signal({ qty: 0, refPx: 10_000 }), 3),
      { approved: true },
      'zero qty adds nothing',
    );
    t.end();
  },
);

void t.test('never more than maxSignalsPerSec approvals per symbol in any 1-second window', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom('A', 'B')), {
        maxLength: 400,
      }),
      (limit, steps) => {
        const r = new RiskActor({ maxSignalsPerSec: limit, maxPosition: 1e9, maxNotional: 1e18 });
        let now = 0;
        const approved: Record<string, number[]> = { A: [], B: [] };
        for (const [dt, sym] of steps) {
          now += dt;
          const d = r.check(signal({ sym, side: 'flat' }), now);
          if (d.approved) approved[sym]!.push(now);
          else if (d.reason !== 'rate_limit') return false;
        }
        for (const times of Object.values(approved)) {
          // any window [t, t+1s) starting at an approval holds at most `limit`
          for (let i = 0; i + limit < times.length; i++) {
            if (times[i + limit]! - times[i]! < 1_000_000) return false;
          }
        }
        return true;
      },
    ),
  );
  t.pass('property held');
  t.end();
});

void t.test('killed → every signal rejected with kill_switch; resume restores', (t) => {
  fc.assert(
    fc.property(fc.array(sigArb, { minLength: 1, maxLength: 50 }), (xs) => {
      const r = new RiskActor({ maxSignalsPerSec: 100_000 });
      const reply = r.kill('alice', 'drill', 1000);
      if (!reply.killed || reply.by !== 'alice' || reply.at !== 1000 || !r.killed) return false;
      for (const x of xs) {
        const d = r.check(signal(x), 1);
        if (d.approved || d.reason !== 'kill_switch') return false;
      }
      const back = r.resume('bob', 'done', 2000);
      if (back.killed || r.killed) return false;
      const d = r.check(signal({ side: 'flat' }), 2);
      return d.approved;
    }),
  );
  t.pass('property held');
  t.end();
});

void t.test('approval does not move positions; fills do', (t) => {
  const r = new RiskActor();
  const s = signal({ qty: 10 });
  t.same(r.check(s, 0), { approved: true });
  t.equal(r.positions().get('BTC-USD'), undefined, 'no position from an approval');
  r.onFill({ signalId: s.id, sym: 'BTC-USD', side: 'buy', qty: 10, px: 100, ts: 0 });
  r.onFill({ signalId: s.id, sym: 'BTC-USD', side: 'sell', qty: 4, px: 100, ts: 0 });
  t.equal(r.positions().get('BTC-USD'), 6);
  t.throws(() => r.onFill({ signalId: 'x', sym: 'BTC-USD', side: 'buy', qty: NaN, px: 1, ts: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /fill.qty/,
  });
  const d = r.check(signal({ qty: 95 }), 1);
  t.same(d, { approved: false, reason: 'max_position', detail: d.approved ? '' : d.detail });
  t.end();
});

void t.test('audit trail records decisions and control, bounded', (t) => {
  const r = new RiskActor({}, { auditCapacity: 5 });
  r.check(signal({ id: 'a' }), 10);
  r.kill('ops', 'halt', 1);
  r.check(signal({ id: 'b' }), 20);
  r.resume('ops', 'ok', 2);
  const a = r.audit();
  t.same(
    a.map((e) => [e.decision, e.signalId, e.reason, e.by]),
    [
      ['approved', 'a', '', 'mom'],
      ['kill', '', '', 'ops'],
      ['rejected', 'b', 'kill_switch', 'mom'],
      ['resume', '', '', 'ops'],
    ],
  );
  t.equal(a[1]!.ts, 1000, 'kill time in µs');
  for (let i = 0; i < 100; i++) r.check(signal({ id: `x${i}`, side: 'flat' }), 30 + i * 1e6);
  const b = r.audit();
  t.equal(b.length, 5, 'bounded by auditCapacity');
  t.same(
    b.map((e) => e.signalId),
    ['x95', 'x96', 'x97', 'x98', 'x99'],
    'the newest, oldest first',
  );
  t.throws(() => new RiskActor({}, { auditCapacity: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /auditCapacity/,
  });
  t.throws(() => new RiskActor({ maxPosition: -1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /maxPosition/,
  });
  t.end();
});

// ───────────────────── model-driven risk: observe, VaR, sizing ─────────────────────

/** Ten returns, oldest first: sorted −0.05 −0.03 −0.02 … 0.04. */
const R = [0.01, -0.02, 0.03, -0.05, 0, 0.02, -0.01, 0.04, -0.03, 0.01];

/** Feed `rs` to the actor as observed prices from 100, with an interval. */
function observeReturns(
  r: RiskActor,
  sym: string,
  rs: readonly number[],
  lower = Number.NaN,
  upper = Number.NaN,
): void {
  let px = 100;
  r.observe(sym, px, 0, lower, upper);
  for (const x of rs) {
    px *= Math.exp(x);
    r.observe(sym, px, 0, lower, upper);
  }
}

void t.test('observe: counts, refuses bad prices, keeps the newest interval', (t) => {
  const r = new RiskActor({ varWindow: 10, varMinObservations: 10 });
  observeReturns(r, 'A', R);
  r.observe('A', 0, 1);
  r.observe('A', NaN, 1);
  t.match(r.counters, { observations: 11, observationsRejected: 2, resized: 0 });
  t.end();
});

void t.test(
  'composed: the interval sizes the signal down, then the VaR rules check the resized qty',
  (t) => {
    const r = new RiskActor({
      maxSignalsPerSec: 1000,
      varWindow: 10,
      varMinObservations: 10,
      varConfidence: 0.9,
      maxSymbolVar: 50, // 10 × 100 × 0.05 = 50: up to 10 units of BTC-USD
      maxAccountVar: 80,
      maxIntervalWidth: 1,
      minSizeFactor: 0.25,
    });
    // Interval width 0.5 → factor 0.5.
    observeReturns(r, 'BTC-USD', R, -0.2, 0.3);
    const big = signal({ qty: 16, strength: 0.8 });
    const d = r.check(big, 1);
    t.same(d, { approved: true, sizeFactor: 0.5 }, '16 → 8 units: VaR 40 ≤ 50');
    t.equal(big.qty, 8, 'qty resized in the signal');
    t.equal(big.strength, 0.4, 'strength by the same factor');
    t.match(r.audit().at(-1), { decision: 'approved', detail: 'sized ×0.5 to qty 8' });
    const bigger = signal({ qty: 22 });
    const d2 = r.check(bigger, 2);
    t.equal(d2.approved ? '' : d2.reason, 'var_symbol', '22 → 11 units: VaR 55 > 50');
    t.equal(bigger.qty, 11, 'the rejection reports the resized qty');
    // Account: 8 BTC-USD held (VaR 40); ETH-USD moves with it.
    r.onFill({ signalId: 'x', sym: 'BTC-USD', side: 'buy', qty: 8, px: 100, ts: 3 });
    observeReturns(r, 'ETH-USD', R); // no interval: factor 1
    const eth = signal({ sym: 'ETH-USD', qty: 9, refPx: 100 });
    const d3 = r.check(eth, 3);
    t.equal(eth.qty, 9, 'no interval: unchanged');
    t.equal(d3.approved ? '' : d3.reason, 'var_account', '(8 + 9) × 100 × 0.05 = 85 > 80');
    t.same(r.check(signal({ sym: 'ETH-USD', qty: 8, refPx: 100 }), 4), { approved: true }, '80');
    t.match(r.counters, { resized: 2, varSkipped: { symbol: 0, account: 0 } });
    // A symbol without enough returns: both VaR rules pass and say so.
    t.same(r.check(signal({ sym: 'NEW', qty: 1 }), 5), { approved: true });
    t.match(r.counters.varSkipped, { symbol: 1, account: 1 });
    t.end();
  },
);

void t.test('defaults: no VaR, no sizing, existing decisions unchanged', (t) => {
  const r = new RiskActor();
  observeReturns(r, 'BTC-USD', [...R, ...R, ...R, ...R], 0, 2);
  const s = signal({ qty: 5 });
  t.same(r.check(s, 1), { approved: true });
  t.equal(s.qty, 5);
  t.match(r.counters, { resized: 0, varSkipped: { symbol: 0, account: 0 } });
  t.end();
});
