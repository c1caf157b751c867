import t from 'tap';
import { Episodes } from '../../kernel/episodes.js';

interface Line {
  level: 'error' | 'info';
  obj: Record<string, unknown>;
  msg: string;
}

function recorder(): { lines: Line[]; log: never } {
  const lines: Line[] = [];
  const log = {
    error: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'error', obj, msg }),
    info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
  };
  return { lines, log: log as never };
}

void t.test(
  'an episode is logged once at error, counted every time, ends after holdMs quiet',
  (t) => {
    const { lines, log } = recorder();
    let now = 0;
    const e = new Episodes({ log, holdMs: 1000, now: () => now });
    for (let i = 0; i < 50; i++) {
      e.raise('store_dropped', 'drop:store', 'QLN_RING_FULL', 'store rows dropped');
      now += 100;
    }
    t.equal(
      lines.filter((l) => l.level === 'error').length,
      1,
      'one error line for 50 occurrences',
    );
    t.match(lines[0], {
      obj: { code: 'QLN_RING_FULL', kind: 'store_dropped' },
      msg: 'store rows dropped',
    });
    t.equal(e.counts.get('store_dropped'), 50, 'every occurrence counted');
    t.same(e.reasons(), ['store rows dropped'], 'listed while it lasts');
    now += 850; // 950 ms after the last occurrence (at 4 900)
    t.same(e.reasons(), ['store rows dropped'], 'still within holdMs of the last occurrence');
    now += 100;
    t.same(e.reasons(), [], 'over after holdMs without one');
    t.equal(lines.filter((l) => l.level === 'info').length, 1, 'one recovery line');
    t.match(lines.at(-1)!.msg, /^recovered: store rows dropped/);
    e.raise('store_dropped', 'drop:store', 'QLN_RING_FULL', 'store rows dropped');
    t.equal(lines.filter((l) => l.level === 'error').length, 2, 'a new episode is logged again');
    t.end();
  },
);

void t.test('an open episode lasts until end(), then holdMs more', (t) => {
  const { lines, log } = recorder();
  let now = 0;
  const e = new Episodes({ log, holdMs: 500, now: () => now });
  e.raise('nats_disconnect', 'nats:shard1', 'QLN_BUS_UNAVAILABLE', 'shard 1 lost NATS', true);
  now += 60_000;
  t.same(e.reasons(), ['shard 1 lost NATS'], 'still open a minute later');
  e.end('nats:shard1');
  now += 499;
  t.same(e.reasons(), ['shard 1 lost NATS'], 'held after the end');
  now += 2;
  t.same(e.reasons(), []);
  t.equal(lines.filter((l) => l.level === 'error').length, 1);
  e.end('unknown'); // harmless
  t.end();
});

void t.test('several episodes at once are listed independently', (t) => {
  const { log } = recorder();
  let now = 0;
  const e = new Episodes({ log, holdMs: 100, now: () => now });
  e.raise('a', 'a:1', 'QLN_INTERNAL', 'A');
  now += 50;
  e.raise('b', 'b:1', 'QLN_INTERNAL', 'B');
  t.same(e.reasons().sort(), ['A', 'B']);
  now += 60;
  t.same(e.reasons(), ['B'], 'A expired, B not yet');
  t.end();
});
