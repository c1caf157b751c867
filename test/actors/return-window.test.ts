import t from 'tap';
import { ReturnWindow } from '../../actors/return-window.js';

void t.test('log returns, newest first, over the ring boundary', (t) => {
  const w = new ReturnWindow(5); // 8 slots
  t.equal(w.count, 0);
  t.equal(w.observe(100, 1), true);
  t.equal(w.count, 0, 'the first price makes no return');
  t.equal(w.lastPx, 100);
  const px = [100];
  for (let i = 1; i <= 11; i++) {
    px.push(100 + i);
    t.equal(w.observe(100 + i, 1 + i), true);
  }
  // 11 returns written: slots 0..7 wrapped once (written = 11 crosses 8).
  t.equal(w.count, 5, 'capped at the window');
  for (let i = 0; i < 5; i++) {
    const want = Math.log(px[11 - i]! / px[10 - i]!);
    t.equal(w.at(i), want, `at(${i})`);
  }
  t.equal(w.lastPx, 111);
  t.equal(w.lastUs, 12);
  t.end();
});

void t.test('window 8 = slots 8: the 8th and 9th return', (t) => {
  const w = new ReturnWindow(8);
  w.observe(1, 0);
  let logPx = 0;
  for (let i = 1; i <= 9; i++) {
    logPx += i / 100; // the i-th return is i / 100
    w.observe(Math.exp(logPx), i);
  }
  t.equal(w.count, 8);
  t.ok(Math.abs(w.at(0) - 0.09) < 1e-12, 'newest: the 9th (wrote slot 0 again)');
  t.ok(Math.abs(w.at(7) - 0.02) < 1e-12, 'oldest kept: the 2nd');
  t.end();
});

void t.test('a price that is not finite and > 0 is refused and changes nothing', (t) => {
  const w = new ReturnWindow(4);
  w.observe(10, 1);
  for (const bad of [0, -1, NaN, Infinity, -Infinity]) t.equal(w.observe(bad, 2), false, `${bad}`);
  t.equal(w.count, 0);
  t.equal(w.lastPx, 10);
  t.equal(w.lastUs, 1);
  w.observe(20, 3);
  t.equal(w.at(0), Math.log(2), 'the next good price returns against the last good one');
  t.end();
});
