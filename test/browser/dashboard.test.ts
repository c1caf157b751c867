/**
 * The live dashboard in headless Chromium (Debian's, through playwright-core)
 * against a real kernel on the real local NATS, Redis and ClickHouse: refused
 * without a key, live signals within seconds, the kill switch shown, 1,000
 * symbols without a frozen page, and a reconnect after a kernel restart.
 * Screenshots go to test-artifacts/ for review.
 */
import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { pino } from 'pino';
import t from 'tap';
import { KernelApp } from '../../cli/kernel-app.js';
import { launchBrowser, pageProblems, screenshot } from '../helpers/browser.js';
import { dropDatabase } from '../helpers/drop-database.js';
import { MarketFeed } from '../helpers/market-feed.js';
import { ensureServices, connectAs } from '../helpers/services.js';
import { SIGNAL_EVERY_TRADE, testKernelConfig } from '../helpers/test-kernel.js';
import { until, within } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const READ_KEY = `dash-read-${run}`;
const SIGNALS_KEY = `dash-sig-${run}`;
const strategy = `dash${run}`;
const account = `acct${run}`;
/** Symbols of this run: unique, so rows of other tests' symbols never count. */
const sym = (i: number | string): string => `D${run}-${i}`;

/** Rows of the symbols table whose symbol starts with `prefix`. */
function rows(page: Page, prefix: string): Promise<number> {
  return page.locator(`#symbols-body tr[data-sym^="${prefix}"]`).count();
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? '';
}

/** Longest main-thread task (ms) the page has had since load (PerformanceObserver longtask). */
function longestTaskMs(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as unknown as { __longest: number }).__longest);
}

void t.test('live dashboard in headless Chromium', async (t) => {
  const urls = await ensureServices();
  const db = `qilin_dash_${run}`;
  const config = await testKernelConfig(urls, db, READ_KEY, {
    ...SIGNAL_EVERY_TRADE,
    // The feed's exchange clock runs ahead of the wall clock (10 ms a tick,
    // published in bursts): not clock skew here.
    actor: { ...SIGNAL_EVERY_TRADE.actor, maxSkewUs: 3_600_000_000 },
    apiKeys: `${READ_KEY}:read,${SIGNALS_KEY}:read=signal/*`,
  });
  const log = pino({ level: 'silent' });
  let app = new KernelApp({ config, log, strategy, account });
  await app.start();
  const base = `http://127.0.0.1:${app.port}`;
  const nc = await connectAs('admin', { name: 'dashboard-test' });
  const feed = new MarketFeed(nc, `v${run}`);
  const browser = await launchBrowser();
  t.teardown(async () => {
    await nc
      .request('ctl.risk.resume', JSON.stringify({ by: 'dashboard-test', reason: 'teardown' }), {
        timeout: 5000,
      })
      .catch(() => undefined);
    await browser.close();
    await nc.drain();
    await app.close();
    await app.store.close();
    await dropDatabase(urls.clickhouseUrl, db);
  });

  await t.test('refused without a valid key', async (t) => {
    const page = await browser.newPage();
    const none = await page.goto(`${base}/`);
    t.equal(none?.status(), 401, 'no key: 401');
    t.match(await text(page, 'h1'), /API key needed/);
    t.equal(await text(page, '#reason'), 'No API key was given.');
    t.equal(await page.locator('#symbols-body').count(), 0, 'the dashboard is not served');
    const wrong = await page.goto(`${base}/?key=not-a-real-key-${run}`);
    t.equal(wrong?.status(), 401, 'unknown key: 401');
    t.equal(await text(page, '#reason'), 'That API key is not valid.');
    // The form on the refusal page leads to the dashboard with a good key.
    await page.fill('input[name=key]', READ_KEY);
    const [nav] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    t.equal(nav?.status(), 200, 'the form with a valid key opens the dashboard');
    t.equal(await page.locator('#symbols-body').count(), 1);
    await page.close();
  });

  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = pageProblems(page);
  await page.addInitScript(() => {
    const w = globalThis as unknown as { __longest: number };
    w.__longest = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longest = Math.max(w.__longest, e.duration);
    }).observe({ type: 'longtask' as 'function', buffered: true }); // a browser entry type Node's types do not list
  });

  await t.test('with a key: live signals within seconds', async (t) => {
    const res = await page.goto(`${base}/?key=${READ_KEY}`);
    t.equal(res?.status(), 200);
    const headers = res?.headers() ?? {};
    t.match(headers['content-security-policy'], /default-src 'self'/, 'same-origin only');
    t.equal(
      headers['referrer-policy'],
      'no-referrer',
      'the key in the URL never leaves as a referrer',
    );
    await until(
      'the page is connected',
      async () => (await text(page, '#conn')) === 'live',
      10_000,
    );
    const started = Date.now();
    for (let i = 0; i < 3; i++) feed.trend(sym(i), 20, i % 2 === 0 ? 1 : -1, 100 + i);
    await until('three symbol rows', async () => (await rows(page, sym(''))) === 3, 10_000);
    await until(
      'a buy or sell signal in the table',
      async () => /^(buy|sell) /.test(await text(page, `tr[data-sym="${sym(0)}"] td:nth-child(4)`)),
      10_000,
    );
    t.ok(Date.now() - started < 10_000, 'signals shown within seconds of the ticks');
    await until('status: kernel running', async () => (await text(page, '#k-state')) === 'running');
    await until('status: signal latency percentiles', async () =>
      / \/ .* \/ /.test(await text(page, '#k-latency')),
    );
    t.match(await text(page, '#k-breaker'), 'closed');
    t.equal(await text(page, '#k-kill'), 'off');
    t.match(await text(page, '#k-model'), /^baseline v\d/);
    t.match(await text(page, '#k-store'), /^up, lag \d/);
    t.ok(Number((await text(page, '#k-symbols')).replace(/,/g, '')) >= 3, 'symbols counted');
    t.equal(await text(page, `tr[data-sym="${sym(0)}"] td:nth-child(1)`), sym(0));
    t.match(
      await text(page, `tr[data-sym="${sym(0)}"] td:nth-child(2)`),
      /^\d+\.\d+$/,
      'mid shown',
    );
    await until('a chart is drawn', async () => (await page.locator('#chart canvas').count()) > 0);
    await page.click(`tr[data-sym="${sym(1)}"]`);
    await until(
      'the chart follows the selected row',
      async () => (await text(page, '#chart-title')) === sym(1),
    );
    const shot = await screenshot(page, 'dashboard');
    t.comment(`screenshot: ${shot}`);
    t.same(problems, [], 'no console error, no exception in the page');
  });

  await t.test('a key that may read only signals: signals shown, the rest named', async (t) => {
    const narrow = await browser.newPage();
    const narrowProblems = pageProblems(narrow);
    const res = await narrow.goto(`${base}/?key=${SIGNALS_KEY}`);
    t.equal(res?.status(), 200);
    await until(
      'the header names the topics this key may not read',
      async () => (await text(narrow, '#errors')).includes('status: not readable with this key'),
      10_000,
    );
    const errors = await text(narrow, '#errors');
    for (const topic of ['prediction/*', 'quality/*']) {
      t.match(errors, `${topic}: not readable with this key`);
    }
    t.notMatch(errors, 'signal/*', 'signal/* is readable');
    // The snapshot of signal/* brings the last signal of every symbol.
    await until('signal rows from the snapshot', async () => (await rows(narrow, sym(''))) === 3);
    t.equal(await text(narrow, '#k-state'), '–', 'no status without the status topic');
    t.same(narrowProblems, [], 'no console error, no exception in the page');
    await narrow.close();
  });

  await t.test('the kill switch is shown when thrown and cleared on resume', async (t) => {
    t.equal(await page.locator('#kill-banner').isVisible(), false);
    const reply = await nc.request(
      'ctl.risk.kill',
      JSON.stringify({ by: 'dashboard-test', reason: 'browser test' }),
      { timeout: 5000 },
    );
    t.match(reply.json<{ killed: boolean }>(), { killed: true });
    await until('the kill banner', () => page.locator('#kill-banner').isVisible(), 5000);
    t.match(await text(page, '#k-kill'), /^ON/);
    t.comment(`screenshot: ${await screenshot(page, 'dashboard-killed')}`);
    await nc.request('ctl.risk.resume', JSON.stringify({ by: 'dashboard-test', reason: 'done' }), {
      timeout: 5000,
    });
    await until(
      'the kill banner goes',
      async () => !(await page.locator('#kill-banner').isVisible()),
      5000,
    );
    t.equal(await text(page, '#k-kill'), 'off');
  });

  await t.test('1,000 symbols: every row, filtering, no frozen page', async (t) => {
    const prefix = sym('k');
    const n = 1000;
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < n; i++) {
        const px = 50 + (i % 97) + round * 0.05;
        feed.trade(`${prefix}${i}`, px);
        feed.quote(`${prefix}${i}`, px - 0.01, px + 0.01);
      }
      await nc.flush();
      // The page must keep answering while the frames pour in.
      await within(
        'the page answers while frames arrive',
        page.evaluate(() => 1),
        5000,
      );
    }
    await until('1,000 rows', async () => (await rows(page, prefix)) === n, 60_000, 200);
    await until(
      'signals on the new symbols',
      async () =>
        /^(buy|sell|flat) /.test(
          await text(page, `tr[data-sym="${prefix}${n - 1}"] td:nth-child(4)`),
        ),
      30_000,
      200,
    );
    t.comment(`screenshot: ${await screenshot(page, 'dashboard-1000-symbols')}`);
    await page.fill('#filter', `${prefix}99`);
    // 99, 990…999: 11 rows of this run stay visible.
    await until(
      'the filter leaves the matching rows',
      async () =>
        (await page.locator(`#symbols-body tr[data-sym^="${prefix}"]:visible`).count()) === 11,
      5000,
    );
    await page.fill('#filter', '');
    const longest = await longestTaskMs(page);
    t.comment(`longest main-thread task with 1,000 symbols: ${longest.toFixed(0)} ms`);
    // A frozen page is seconds; rendering is throttled to a few frames a second.
    t.ok(longest < 2000, `no main-thread task near a freeze (longest ${longest.toFixed(0)} ms)`);
    t.same(problems, [], 'no console error, no exception in the page');
  });

  await t.test('reconnects by itself after a kernel restart', async (t) => {
    await app.close();
    await app.store.close();
    await until('the page sees the connection go', async () =>
      (await text(page, '#conn')).startsWith('reconnecting'),
    );
    app = new KernelApp({ config, log, strategy, account });
    await app.start();
    await until('live again', async () => (await text(page, '#conn')) === 'live', 20_000);
    feed.trend(sym('after'), 12, 1, 300);
    await until(
      'a symbol first seen after the restart',
      async () => (await rows(page, sym('after'))) === 1,
    );
    // While the kernel was down the browser logged failed WebSocket connects: expected, nothing else.
    const unexpected = problems.filter((p) => !/WebSocket connection to .* failed/.test(p));
    t.same(unexpected, [], 'only the failed reconnect attempts were logged');
  });
});
