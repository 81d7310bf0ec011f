/**
 * A real headless browser for the report tests: Debian's chromium driven by playwright-core.
 * `CHROMIUM` is null (and tests skip, saying so) when /usr/bin/chromium is absent.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { REPO } from './run-cli.js';

const PATH = process.env.CLIPSTREAM_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM: string | null = existsSync(PATH) ? PATH : null;
export const NO_CHROMIUM = `skipped: ${PATH} is absent (apt-get install chromium; .ci/run installs it)`;

/** Where screenshots go: $CLIPSTREAM_TEST_ARTIFACTS, else test-artifacts/ in the checkout. */
export const ARTIFACTS = process.env.CLIPSTREAM_TEST_ARTIFACTS ?? join(REPO, 'test-artifacts');

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
}

export interface PageCheck {
  /** console errors, uncaught page errors and failed requests, as text. */
  problems: string[];
  /** data-count name -> value as shown. */
  counts: Record<string, number>;
  /** every <img> on the page: its src and natural width (0: did not decode). */
  images: { src: string; naturalWidth: number }[];
  /** the hrefs of the page's links to other pages of the report. */
  links: string[];
  /** every request the page made (a report must make none outside file://). */
  requests: string[];
}

/** Opens a file of the report from disk, waits for it to load, and gathers what the tests check. */
export async function checkPage(browser: Browser, file: string, screenshot?: string): Promise<PageCheck> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => requests.push(r.url()));
  const resp = await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  if (!resp?.ok()) problems.push(`did not load: ${file}`);
  const data = await page.evaluate(() => {
    const counts: Record<string, number> = {};
    for (const el of Array.from(document.querySelectorAll('[data-count]'))) counts[el.getAttribute('data-count')!] = Number(el.textContent);
    const images = Array.from(document.images).map((i) => ({ src: i.getAttribute('src') ?? '', naturalWidth: i.naturalWidth }));
    const links = Array.from(document.querySelectorAll('a[href]'))
      .map((a) => a.getAttribute('href')!)
      .filter((h) => !h.startsWith('#'));
    return { counts, images, links };
  });
  if (screenshot) {
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
  }
  await page.close();
  return { problems, requests, ...data };
}
