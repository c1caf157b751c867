import t from 'tap';
import { connectNats, drainNats } from '../../../adapters/nats/nats-connection.js';
import { createLogger } from '../../../kernel/logger.js';
import { ensureServices, natsSeedFile } from '../../helpers/services.js';

const log = createLogger('nats-connection-test', process.env['QILIN_LOG_LEVEL'] ?? 'warn');

void t.test('connects with a name and drains cleanly, twice', async (t) => {
  const { natsUrl } = await ensureServices();
  const nc = await connectNats({
    servers: natsUrl,
    seedFile: await natsSeedFile('admin'),
    name: 'test-connection',
    log,
  });
  t.equal(nc.isClosed(), false);
  t.ok(nc.info?.server_id, 'talking to a server');
  await drainNats(nc);
  t.equal(nc.isClosed(), true);
  await drainNats(nc);
  t.equal(nc.isClosed(), true);
});

void t.test('a server that is not there fails fast with a code naming the URL', async (t) => {
  await t.rejects(
    connectNats({
      servers: 'nats://127.0.0.1:1',
      name: 'test-connection-bad',
      log,
      timeoutMs: 1000,
    }),
    { code: 'QLN_BUS_UNAVAILABLE', message: /nats:\/\/127\.0\.0\.1:1/ },
  );
  await t.rejects(connectNats({ servers: [], name: 'x', log }), { code: 'QLN_INVALID_ARGUMENT' });
});
