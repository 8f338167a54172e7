// bench/html's browser half: opens a report in headless Chromium and says
// how long until it is interactive (its script has built and drawn the
// tree), then how long the first clicks take. Median of several loads.
//   node bench/html_open.mjs REPORT.html [RUNS]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const file = resolve(process.argv[2]);
const runs = +(process.argv[3] || 5);
const median = xs => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const profile = mkdtempSync(join(tmpdir(), 'sprof-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run',
         '--disable-quic']
});

const ready = [], scripted = [], clicks = [];
for (let i = 0; i < runs; i++) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  const t0 = Date.now();
  await page.goto('file://' + file, { waitUntil: 'commit' });
  await page.waitForSelector('html[data-ready="true"]', { timeout: 60000 });
  ready.push(Date.now() - t0);
  // the page's own clock: from navigation start to the end of its script
  scripted.push(await page.evaluate(() => performance.getEntriesByName('sprof-ready')[0].startTime));
  const t1 = Date.now();
  await page.click('#tab-flame');
  await page.click('#tab-timeline');
  await page.click('#tab-tree');
  await page.locator('#tree .row').first().click();
  await page.locator('#tree .row').first().click();
  await page.fill('#search', 'handle_1');
  await page.press('#search', 'Enter');
  await page.waitForSelector('#tree .row.current');
  clicks.push(Date.now() - t1);
  if (errors.length) { console.error(errors.join('\n')); process.exitCode = 1; }
  await page.close();
}
await context.close();
rmSync(profile, { recursive: true, force: true });

console.log(`interactive: ${median(ready)} ms from navigation to a usable page ` +
            `(median of ${runs}; the page's script done at ${Math.round(median(scripted))} ms)`);
console.log(`first use:   ${median(clicks)} ms for flame graph, timeline, tree, ` +
            'collapse, expand and a search');
