// The HTML report of sprof-lua --diff in a real headless Chromium: two runs
// of a script, the second with one function twice as slow, one gone and
// one new; the page read and clicked as a user would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchChromium, watchedPage } from './chromium.mjs';

const build = resolve(process.env.SPROF_BUILD || 'build');
const sprofLua = join(build, 'sprof-lua');
const dir = mkdtempSync(join(tmpdir(), 'sprof-diff-'));
const env = { ...process.env, XDG_STATE_HOME: dir };
let context, page, seen;

// Sized by CPU time: slow spins 20 ms (40 ms with SLOW_FACTOR=2) a round,
// steady 20 ms; gone runs only in the first run, fresh only in the second.
const SCRIPT = `
local factor = tonumber(os.getenv("SLOW_FACTOR")) or 1
local function spin (secs)
  local stop = os.clock() + secs
  repeat local x = 0 for i = 1, 1000 do x = x + i % 7 end until os.clock() >= stop
end
local function slow () spin(0.02 * factor) end
local function steady () spin(0.02) end
local function gone () spin(0.01) end
local function fresh () spin(0.01) end
for _ = 1, 12 do
  slow() steady()
  if factor == 1 then gone() else fresh() end
end
`;

function run (args, extraEnv = {}) {
  execFileSync(sprofLua, args, { cwd: dir, env: { ...env, ...extraEnv },
                                 stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  const script = join(dir, 'work.lua');
  writeFileSync(script, SCRIPT);
  run(['--clock', 'cpu', '-o', 'before.json', script], { SLOW_FACTOR: '1' });
  run(['--clock', 'cpu', '-o', 'after.json', script], { SLOW_FACTOR: '2' });
  run(['--diff', 'before.json', 'after.json', '-o', 'diff.html']);
  context = await launchChromium(join(dir, 'profile'), { viewport: { width: 1300, height: 900 } });
  ({ page, seen } = await watchedPage(context));
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('file://' + join(dir, 'diff.html'));
  await page.waitForSelector('html[data-ready="true"]', { timeout: 20000 });
});

after(async () => {
  if (context) await context.close();
  rmSync(dir, { recursive: true, force: true });
});

function clean () {
  assert.deepEqual(seen.errors, [], 'console or page errors');
  assert.deepEqual(seen.dialogs, [], 'dialogs');
  const outside = seen.requests.filter(u => !u.startsWith('file://') && !u.startsWith('data:'));
  assert.deepEqual(outside, [], 'requests beyond the file itself');
}

// A change as the page writes it: "+12.3 pt", "-4.0 pt", "0.0 pt".
const points = text => parseFloat(text.replace(/ pt$/, ''));

// The children of (main chunk) in the tree, in the order shown.
function children () {
  return page.$$eval('#tree .row[aria-level="2"]', list => list.map(r => ({
    name: r.querySelector('.fn').textContent,
    before: r.querySelector('.c-before').textContent,
    after: r.querySelector('.c-after').textContent,
    change: r.querySelector('.c-change').textContent,
    trend: ['up', 'down', 'same'].find(c => r.querySelector('.c-change').classList.contains(c)),
    relative: r.querySelector('.c-rel').textContent
  })));
}

// The colour painted at a point of a canvas (CSS px from its corner).
function colorAt (id, x, y) {
  return page.evaluate(([id, x, y]) => {
    const c = document.getElementById(id), ratio = window.devicePixelRatio || 1;
    const d = c.getContext('2d').getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
    return { r: d[0], g: d[1], b: d[2] };
  }, [id, x, y]);
}

test('the page says what is compared, with no errors and no requests', async () => {
  assert.equal(await page.textContent('#program'), 'before.json → after.json');
  const facts = await page.$$eval('.fact', fs => fs.map(f => f.querySelector('.label').textContent));
  assert.deepEqual(facts, ['Before', 'After', 'Compared']);
  assert.match(await page.textContent('.fact:nth-child(3) .value'), /shares of each run/);
  assert.match(await page.textContent('#legend'), /slower.*unchanged.*faster/);
  assert.equal(await page.isVisible('#tab-timeline'), false);
  clean();
});

test('the tree shows before, after and the change, largest increase first', async () => {
  const kids = await children();
  assert.deepEqual(kids.map(k => k.name).sort(), ['fresh', 'gone', 'slow', 'steady']);
  const changes = kids.map(k => points(k.change));
  assert.deepEqual(changes, [...changes].sort((a, b) => b - a), 'sorted by change');
  const by = Object.fromEntries(kids.map(k => [k.name, k]));
  assert.equal(kids[0].name, 'slow');
  assert.equal(by.slow.trend, 'up');
  assert.match(by.slow.change, /^\+\d+\.\d pt$/);
  assert.ok(parseFloat(by.slow.after) > parseFloat(by.slow.before), JSON.stringify(by.slow));
  assert.equal(by.steady.trend, 'down');
  assert.equal(by.gone.after, '0.0%');
  assert.equal(by.gone.relative, '-100%');
  assert.equal(by.fresh.before, '0.0%');
  assert.equal(by.fresh.relative, 'new');
  clean();
});

test('the tree sorts by a column when its head is clicked', async () => {
  await page.click('#view-tree .tree-head button:has-text("Change")');   // the other way round
  let changes = (await children()).map(k => points(k.change));
  assert.deepEqual(changes, [...changes].sort((a, b) => a - b), 'largest decrease first');
  assert.equal(await page.getAttribute('#view-tree .tree-head button:has-text("Change")', 'aria-pressed'), 'true');
  await page.click('#view-tree .tree-head button:has-text("After")');
  const afters = (await children()).map(k => parseFloat(k.after));
  assert.deepEqual(afters, [...afters].sort((a, b) => b - a), 'largest after first');
  await page.click('#view-tree .tree-head button:has-text("Change")');
  changes = (await children()).map(k => points(k.change));
  assert.deepEqual(changes, [...changes].sort((a, b) => b - a));
  clean();
});

test('the flame graph colours the increase red and the decrease blue', async () => {
  await page.click('#tab-flame');
  const box = await page.locator('#flame').boundingBox();
  // rows: the program, (main chunk), then its callees, widest first: slow
  const y = 2 * 20 + 10;
  const seenAt = {};
  for (let x = 5; x < box.width; x += 20) {
    await page.mouse.move(box.x + x, box.y + y);
    if (!await page.isVisible('#tooltip')) continue;
    const name = await page.textContent('#tooltip .t-name');
    if (!seenAt[name]) seenAt[name] = { x, tip: await page.textContent('#tooltip') };
  }
  assert.ok(seenAt.slow && seenAt.steady && seenAt.fresh, JSON.stringify(Object.keys(seenAt)));
  assert.equal(seenAt.slow.x, 5, 'the widest block is at the left');
  assert.match(seenAt.slow.tip, /change\+\d+\.\d pt/);
  assert.match(seenAt.steady.tip, /change-\d+\.\d pt/);
  assert.equal(seenAt.gone, undefined, 'gone has no width in the after run');
  // colours read near the top of the row, above the block's label (a
  // glyph's pixel is the text colour)
  const top = 2 * 20 + 3;
  const slow = await colorAt('flame', seenAt.slow.x, top);
  const steady = await colorAt('flame', seenAt.steady.x + 2, top);
  assert.ok(slow.r > slow.b + 60, 'slow is red: ' + JSON.stringify(slow));
  assert.ok(steady.b > steady.r + 40, 'steady is blue: ' + JSON.stringify(steady));
  const main = await colorAt('flame', 5, 20 + 3);   // 100% of both runs
  assert.ok(Math.abs(main.r - main.b) < 20, '(main chunk) is grey: ' + JSON.stringify(main));
  await page.mouse.move(0, 0);
  clean();
});

test('the functions table sorts by change and by column, and leads to the tree', async () => {
  await page.click('#tab-functions');
  const names = () => page.$$eval('#functions tbody tr .fn', l => l.map(e => e.textContent));
  let list = await names();
  assert.equal(list[0], 'slow');
  assert.match(await page.getAttribute('#functions tbody tr:first-child td:nth-child(4)', 'class'), /\bup\b/);
  await page.click('#functions th button:has-text("Function")');
  list = await names();
  assert.deepEqual(list, [...list].sort((a, b) => a.toLowerCase() < b.toLowerCase() ? -1 : 1));
  assert.equal(await page.getAttribute('#functions th:first-child', 'aria-sort'), 'ascending');
  await page.click('#functions th button:has-text("Change")');
  assert.equal((await names())[0], 'slow');
  await page.click('#functions th button:has-text("Change")');
  const changes = await page.$$eval('#functions tbody tr td:nth-child(4)', l => l.map(e => e.textContent));
  const pts = changes.map(points);
  assert.deepEqual(pts, [...pts].sort((a, b) => a - b), 'largest decrease first');
  await page.click('#functions tbody tr:has(.fn:text-is("slow")) .fn');
  assert.equal(await page.isVisible('#view-tree'), true);
  assert.equal(await page.textContent('#tree .row.current .fn'), 'slow');
  clean();
});
