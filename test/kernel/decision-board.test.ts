import fc from 'fast-check';
import t from 'tap';
import { Worker } from 'node:worker_threads';
import {
  ApprovedSide,
  DecisionBoard,
  DecisionView,
  DecisionWord,
  decisionBoardBytes,
} from '../../kernel/decision-board.js';
import { ErrorCodes } from '../../kernel/errors.js';

/** The documented mapping: shard = symId % shards, local = (symId − shard) / shards. */
const place = (symId: number, shards: number): [shard: number, local: number] => [
  symId % shards,
  Math.floor(symId / shards),
];

void t.test('layout and codes', (t) => {
  t.equal(decisionBoardBytes(1), 20, '4 header words + 1 symbol, 4 B each');
  t.equal(decisionBoardBytes(1000), 4016);
  t.same(ApprovedSide, { NONE: 0, BUY: 1, SELL: -1, FLAT: 2, UNKNOWN: 3 });
  t.equal(DecisionWord.EPOCH, 0);
  const board = new DecisionBoard(3, 10);
  t.equal(board.buffers.length, 3);
  t.ok(board.buffers.every((b) => b instanceof SharedArrayBuffer && b.byteLength === 56));
  t.end();
});

void t.test('approve / unknown / clear round trip through a DecisionView', (t) => {
  const board = new DecisionBoard(1, 8);
  const view = new DecisionView(board.buffers[0]!);
  t.equal(view.epoch, 0);
  t.equal(view.approved(3), 0, 'nothing approved yet reads as flat');
  t.equal(board.code(3), ApprovedSide.NONE);
  board.approve(3, 1);
  t.equal(view.approved(3), 1, 'buy');
  t.equal(board.code(3), ApprovedSide.BUY);
  board.approve(3, -1);
  t.equal(view.approved(3), -1, 'sell');
  t.equal(board.code(3), ApprovedSide.SELL);
  board.approve(3, 0);
  t.equal(view.approved(3), 0, 'flat approved reads 0 …');
  t.equal(board.code(3), ApprovedSide.FLAT, '… stored as FLAT (2), not NONE');
  board.unknown(3);
  t.ok(Number.isNaN(view.approved(3)), 'unknown reads NaN');
  t.equal(board.code(3), ApprovedSide.UNKNOWN);
  board.approve(3, 1);
  t.equal(view.approved(3), 1, 'approved again after unknown');
  t.same(
    [0, 1, 2, 4, 5, 6, 7].map((l) => view.approved(l)),
    [0, 0, 0, 0, 0, 0, 0],
    'the neighbours untouched',
  );
  board.approve(0, -1);
  board.approve(7, 1);
  t.equal(view.epoch, 0, 'approvals do not move the epoch');
  board.clear(0);
  t.same(
    Array.from({ length: 8 }, (_, l) => view.approved(l)),
    [0, 0, 0, 0, 0, 0, 0, 0],
    'clear forgets every decision',
  );
  t.same([board.code(0), board.code(3), board.code(7)], [0, 0, 0]);
  t.equal(view.epoch, 1, 'clear bumps the epoch');
  t.end();
});

void t.test('several shards: the symId → (shard, local) mapping', (t) => {
  const board = new DecisionBoard(3, 4);
  const views = board.buffers.map((b) => new DecisionView(b));
  // symIds 0..11: shard = id % 3, local = id / 3 (integer)
  t.same(
    Array.from({ length: 12 }, (_, id) => place(id, 3)),
    [
      [0, 0],
      [1, 0],
      [2, 0],
      [0, 1],
      [1, 1],
      [2, 1],
      [0, 2],
      [1, 2],
      [2, 2],
      [0, 3],
      [1, 3],
      [2, 3],
    ],
  );
  board.approve(7, 1); // shard 1, local 2
  board.approve(9, -1); // shard 0, local 3
  board.unknown(5); // shard 2, local 1
  board.approve(2, 0); // shard 2, local 0
  const read = views.map((v) => [0, 1, 2, 3].map((l) => v.approved(l)));
  t.same(read[0], [0, 0, 0, -1], 'shard 0: symId 9 at local 3');
  t.same(read[1], [0, 0, 1, 0], 'shard 1: symId 7 at local 2');
  t.ok(Number.isNaN(read[2]![1]!), 'shard 2: symId 5 at local 1 unknown');
  t.same([read[2]![0], read[2]![2], read[2]![3]], [0, 0, 0], 'shard 2: symId 2 flat, others none');
  t.equal(board.code(2), ApprovedSide.FLAT);
  t.equal(board.code(8), ApprovedSide.NONE, 'symId 8 (shard 2, local 2) untouched');

  board.resync();
  t.same(
    views.map((v) => v.epoch),
    [1, 1, 1],
    'resync: every shard +1',
  );
  board.resync();
  board.clear(1);
  t.same(
    views.map((v) => v.epoch),
    [2, 3, 2],
    'clear(1): only shard 1 +1',
  );
  t.equal(views[1]!.approved(2), 0, 'shard 1 forgot symId 7');
  t.equal(views[0]!.approved(3), -1, 'shard 0 kept symId 9');
  t.ok(Number.isNaN(views[2]!.approved(1)), 'shard 2 kept symId 5');
  board.clear(3);
  board.clear(-1);
  t.same(
    views.map((v) => v.epoch),
    [2, 3, 2],
    'clear of a shard that does not exist: nothing',
  );
  t.end();
});

void t.test('ids beyond the capacity are ignored', (t) => {
  const board = new DecisionBoard(2, 3); // locals 0..2 per shard: symIds 0..5
  const views = board.buffers.map((b) => new DecisionView(b));
  board.approve(5, 1); // shard 1, local 2: the last word
  board.approve(6, 1); // shard 0, local 3: beyond
  board.approve(7, -1); // shard 1, local 3: beyond
  board.unknown(100); // shard 0, local 50
  t.equal(views[1]!.approved(2), 1);
  t.equal(board.code(6), 0);
  t.equal(board.code(7), 0);
  t.equal(board.code(100), 0);
  t.equal(views[0]!.approved(3), 0, 'a view reads 0 beyond its capacity');
  t.equal(views[1]!.approved(1_000_000), 0);
  t.same(
    views.map((v) => v.epoch),
    [0, 0],
    'nothing spilled into the header',
  );
  t.same(
    board.buffers.map((b) => Array.from(new Int32Array(b))),
    [
      [0, 0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 1],
    ],
    'the only word written is symId 5',
  );
  t.end();
});

void t.test('random operations match a plain map (property)', (t) => {
  type Op =
    | { op: 'approve'; symId: number; side: number }
    | { op: 'unknown'; symId: number }
    | { op: 'resync' }
    | { op: 'clear'; shard: number };
  const opArb = (maxId: number, shards: number): fc.Arbitrary<Op> =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          op: fc.constant('approve' as const),
          symId: fc.nat({ max: maxId }),
          side: fc.constantFrom(1, -1, 0),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('unknown' as const),
          symId: fc.nat({ max: maxId }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('resync' as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('clear' as const),
          shard: fc.nat({ max: shards }),
        }),
      },
    );
  let decided = 0;
  fc.assert(
    fc.property(
      fc
        .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }))
        .chain(([shards, cap]) =>
          fc.tuple(
            fc.constant(shards),
            fc.constant(cap),
            fc.array(opArb(shards * cap + 3, shards), { minLength: 10, maxLength: 80 }),
          ),
        ),
      ([shards, cap, ops]) => {
        const board = new DecisionBoard(shards, cap);
        const views = board.buffers.map((b) => new DecisionView(b));
        const sides = new Map<number, number>(); // symId → what approved() should say
        const epochs = Array.from({ length: shards }, () => 0);
        for (const o of ops) {
          if (o.op === 'approve') {
            board.approve(o.symId, o.side);
            if (place(o.symId, shards)[1] < cap) sides.set(o.symId, o.side);
          } else if (o.op === 'unknown') {
            board.unknown(o.symId);
            if (place(o.symId, shards)[1] < cap) sides.set(o.symId, NaN);
          } else if (o.op === 'resync') {
            board.resync();
            for (let s = 0; s < shards; s++) epochs[s]!++;
          } else {
            board.clear(o.shard);
            if (o.shard < shards) {
              epochs[o.shard]!++;
              for (const id of [...sides.keys()]) if (id % shards === o.shard) sides.delete(id);
            }
          }
        }
        for (let id = 0; id < shards * cap + 3; id++) {
          const [shard, local] = place(id, shards);
          const want = sides.get(id) ?? 0;
          const got = views[shard]!.approved(local);
          if (!(got === want || (Number.isNaN(got) && Number.isNaN(want)))) return false;
          if (want !== 0) decided++;
        }
        return views.every((v, s) => v.epoch === epochs[s]);
      },
    ),
    { numRuns: 500 },
  );
  t.ok(decided > 1_500, `${decided} buy/sell/unknown words read back as the plain map says`);
  t.end();
});

void t.test('bad arguments', (t) => {
  for (const [shards, max, key] of [
    [0, 10, 'shards'],
    [1.5, 10, 'shards'],
    [NaN, 10, 'shards'],
    [2, 0, 'maxSymbolsPerShard'],
    [2, 2.5, 'maxSymbolsPerShard'],
  ] as const) {
    t.throws(() => new DecisionBoard(shards, max), {
      code: ErrorCodes.INVALID_ARGUMENT,
      message: new RegExp(`invalid ${key}:`),
    });
  }
  t.throws(() => new DecisionView(new SharedArrayBuffer(16)), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /invalid decisions: 16/,
  });
  t.throws(() => new DecisionView(new SharedArrayBuffer(22)), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /invalid decisions: 22/,
  });
  t.equal(new DecisionView(new SharedArrayBuffer(20)).approved(0), 0, 'one symbol is enough');
  t.end();
});

/**
 * A worker holding a DecisionView over the buffer it was sent. It answers
 * each {read: locals} with the epoch and the approved sides it reads then.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
let view;
parentPort.on('message', async (m) => {
  if (m.init) {
    const { DecisionView } = await import(m.init.module);
    view = new DecisionView(m.init.sab);
    parentPort.postMessage({ ready: true });
  } else {
    parentPort.postMessage({ epoch: view.epoch, sides: m.read.map((l) => view.approved(l)) });
  }
});
`;

interface Reply {
  ready?: boolean;
  epoch?: number;
  sides?: number[];
}

void t.test('a DecisionView in a worker thread sees the main thread writes', async (t) => {
  const board = new DecisionBoard(2, 4);
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  // replies in arrival order; next() takes the oldest, or waits for one
  const replies: Reply[] = [];
  let waiting: { resolve: (r: Reply) => void; reject: (e: unknown) => void } | undefined;
  worker.on('message', (r: Reply) => {
    const w = waiting;
    waiting = undefined;
    if (w !== undefined) w.resolve(r);
    else replies.push(r);
  });
  worker.on('error', (e) => {
    const w = waiting;
    waiting = undefined;
    w?.reject(e);
  });
  const next = (): Promise<Reply> => {
    const r = replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise<Reply>((resolve, reject) => {
      waiting = { resolve, reject };
    });
  };
  try {
    const module = new URL('../../kernel/decision-board.js', import.meta.url).href;
    worker.postMessage({ init: { module, sab: board.buffers[1] } });
    t.same(await next(), { ready: true }, 'worker holds a view of shard 1');

    const ask = async (): Promise<Reply> => {
      worker.postMessage({ read: [0, 1, 2, 3] });
      return next();
    };
    t.same(await ask(), { epoch: 0, sides: [0, 0, 0, 0] }, 'before any write');

    board.approve(1, 1); // shard 1, local 0
    board.approve(5, -1); // shard 1, local 2
    board.approve(4, 1); // shard 0: not the worker's
    board.unknown(7); // shard 1, local 3
    const r1 = await ask();
    t.equal(r1.epoch, 0);
    t.equal(r1.sides!.length, 4);
    t.same(r1.sides!.slice(0, 3), [1, 0, -1], 'approvals written after the view was made');
    t.ok(Number.isNaN(r1.sides![3]), 'unknown crosses as NaN');

    board.resync();
    board.approve(1, 0);
    board.approve(3, -1); // shard 1, local 1
    t.same(await ask(), { epoch: 1, sides: [0, -1, -1, NaN] }, 'resync and more approvals');

    board.clear(0);
    t.equal((await ask()).epoch, 1, 'clearing another shard leaves this one alone');
    board.clear(1);
    t.same(await ask(), { epoch: 2, sides: [0, 0, 0, 0] }, 'clear(1) seen by the worker');
  } finally {
    await worker.terminate();
  }
});

void t.test('a restarted worker renumbers its symbols: announce re-seeds each by name', (t) => {
  const board = new DecisionBoard(2, 16);
  const view = new DecisionView(board.buffers[0]!);
  // before the restart: shard 0 has AAA at id 0 (local 0) and BBB at id 2 (local 1)
  board.announce(0, 'AAA');
  board.announce(2, 'BBB');
  board.approve(0, -1);
  board.approve(2, 1);
  t.equal(view.approved(0), -1);
  t.equal(view.approved(1), 1);
  board.clear(0);
  t.equal(view.approved(0), 0, 'cleared');
  // the new worker announces them the other way round
  board.announce(0, 'BBB');
  board.announce(2, 'AAA');
  t.equal(view.approved(0), 1, 'BBB keeps its approved buy under its new id');
  t.equal(view.approved(1), -1, 'AAA keeps its approved sell');
  // an id reused for a symbol never approved reads as nothing approved
  board.announce(0, 'CCC');
  t.equal(view.approved(0), 0);
  t.equal(board.code(0), 0);
  t.end();
});
