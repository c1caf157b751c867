import t from 'tap';
import {
  DEFAULT_RISK_LIMITS,
  RateWindow,
  killSwitchRule,
  maxNotionalRule,
  maxPositionRule,
  minQualityRule,
  newRiskState,
  rateLimitRule,
  resolveRiskLimits,
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
