import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from './services.js';

/** Where browser tests save screenshots for review (git-ignored; CI keeps it as an artifact). */
export const ARTIFACTS_DIR = join(repoRoot, 'test-artifacts');

/**
 * Debian's Chromium (`ops/ensure-browser.sh` installs it), or
 * QILIN_CHROMIUM. Missing is an error that says how to install it, never a
 * silent skip: CI installs it, so a test that does not run there is a bug.
 */
export function chromiumPath(): string {
  const path = process.env['QILIN_CHROMIUM'] ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: run "bash ops/ensure-browser.sh" (apt-get install chromium) or set QILIN_CHROMIUM`,
    );
  }
  return path;
}

/** Headless Chromium through playwright-core (no bundled browser download). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    // Running as root in CI containers: Chromium refuses its sandbox there.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** What went wrong inside a page: console errors and uncaught exceptions, for assertions. */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

/** Save a screenshot under test-artifacts/ and return its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
