// The HTML report in a real headless Chromium (Debian's, driven by
// playwright-core): pages made by sprof-lua from real runs, then loaded,
// read and clicked as a user would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchChromium, watchedPage } from './chromium.mjs';

const build = resolve(process.env.SPROF_BUILD || 'build');
const sprofLua = join(build, 'sprof-lua');
const dir = mkdtempSync(join(tmpdir(), 'sprof-html-'));
const pages = {};
// sprof-lua keeps its sessions under XDG_STATE_HOME: here, not in ~
const env = { ...process.env, XDG_STATE_HOME: dir };
let context;


function profile (name, code, options = []) {
  const script = join(dir, name + '.lua');
  const out = join(dir, name + '.html');
  writeFileSync(script, code);
  execFileSync(sprofLua, ['-r', 'html', '-o', out, ...options, script],
               { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

// work(n): n steps of work; busy(secs): secs seconds of CPU in work
const SPIN = 'local function work (n) local x = 0 for i = 1, n do x = x + i % 7 end return x end\n'
  + 'local function busy (secs) local t0 = os.clock() repeat work(100000) until os.clock() - t0 >= secs end\n';

// seven and three do 7 and 3 parts of the same work: 70% and 30% of the
// CPU time (on a busy machine, wall time also counts the waits for a CPU).
// The CPU timer ticks every 4 ms: 4 s of work gives 1,000 samples, so
// that the share seen is within 5 points of the true one (3 sigma).
const SHARES = SPIN + `
local function seven () for _ = 1, 7 do work(100000) end end
local function three () for _ = 1, 3 do work(100000) end end
local t0 = os.clock()
repeat seven() three() until os.clock() - t0 >= 4
`;

const HOSTILE = SPIN + `
local t = {}
t["<b>x</b>"] = function () busy(0.03) end
local chunk = load("local busy = ... busy(0.03)", "=</script><img src=x onerror=alert(1)>")
t["<b>x</b>"]()
chunk(busy)
`;

// names that are not UTF-8: a stray byte, a cut sequence, an overlong
// '/', a surrogate, and U+2028 / U+2029 that end lines in old JavaScript
const BAD_UTF8 = SPIN + `
local t = {}
t["f\\255\\254"] = function () busy(0.03) end
t["\\226\\130"] = function () busy(0.03) end
local chunk = load("local busy = ... busy(0.03)", "=bad\\192\\175\\237\\160\\128 \\u{2028}\\u{2029}")
t["f\\255\\254"]()
t["\\226\\130"]()
chunk(busy)
`;

// a library (under share/lua/) that calls C functions and the program back
const LIBRARY = `
package.path = ${JSON.stringify(join(dir, 'share/lua/5.4/?.lua'))} .. ";" .. package.path
local mylib = require "mylib"
${SPIN}
-- the callback does most of the work: no library frame has the 20% of own
-- time that would show it inside the group
local function callback (s) work(#s * 30) end
local t0 = os.clock()
repeat mylib.process(callback, 30000) until os.clock() - t0 >= 0.4
`;

const MYLIB = `
local M = {}
local function inner (cb, n)
  local parts = {}
  for i = 1, n do parts[#parts + 1] = tostring(i) end
  local s = table.concat(parts, ",")
  cb(s)
  return #s
end
function M.process (cb, n)
  local r = 0
  for _ = 1, 10 do r = r + inner(cb, n) end
  return r
end
return M
`;

// The HTML page of a saved session with the given facts, as --load renders it.
function renderSession (name, facts) {
  const session = { format: 'sprof-session', version: 1, start_time: 1.7e9, interval: 0.001,
                    clock: 'wall', overhead_ns: 0, sampler_ns: 0, ...facts };
  const json = join(dir, name + '.json'), out = join(dir, name + '.html');
  writeFileSync(json, JSON.stringify(session));
  execFileSync(sprofLua, ['--load', json, '-r', 'html', '-o', out], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}


// A saved session: main calls one big function and 450 tiny ones; the
// host (native, above the Lua root) runs main through the interpreter's
// own frames, and spends time of its own outside Lua.
function manySmall () {
  const frames = [
    { name: 'host_loop', file: 'host.c', line: 10, kind: 'native', host: true },
    { name: 'luaV_execute', file: '', line: 0, kind: 'native', internal: true },
    { name: 'main', file: 'app.lua', line: 1, kind: 'lua' },
    { name: 'big', file: 'app.lua', line: 5, kind: 'lua' },
    { name: 'inflate', file: 'zlib.c', line: 7, kind: 'native' }
  ];
  const ms = 1e6, stacks = [
    { frames: [0], weight_ns: 300 * ms, samples: 300 },
    { frames: [0, 1, 2, 3], weight_ns: 500 * ms, samples: 500 },
    { frames: [0, 1, 2, 3, 1, 4], weight_ns: 100 * ms, samples: 100 }
  ];
  for (let i = 0; i < 450; i++) {
    frames.push({ name: 'tiny' + i, file: 'app.lua', line: 10 + i, kind: 'lua' });
    stacks.push({ frames: [0, 1, 2, frames.length - 1], weight_ns: 0.2 * ms, samples: 1 });
  }
  return renderSession('many', { program: 'host', duration_ns: 990 * ms, cpu_ns: 990 * ms,
                                 samples: 1350, frames, stacks });
}

// A saved session: main calls M.run of a library, which through walk calls
// step (3% own time), crunch (40%, and string.rep under it) and the
// program's callback; as the text report shows it in spec/library_spec.lua.
function hotLibrary () {
  const lib = '/usr/share/lua/5.4/vendorlib.lua', ms = 1e6;
  const frames = [
    { name: 'main', file: 'app.lua', line: 1, kind: 'lua', library: false },
    { name: 'M.run', file: lib, line: 10, kind: 'lua', library: true },
    { name: 'walk', file: lib, line: 5, kind: 'lua', library: true },
    { name: 'step', file: lib, line: 3, kind: 'lua', library: true },
    { name: 'crunch', file: lib, line: 1, kind: 'lua', library: true },
    { name: 'callback', file: 'app.lua', line: 5, kind: 'lua', library: false },
    { name: 'string.rep', file: '[C]', line: 0, kind: 'c' }
  ];
  const stacks = [[[0], 200], [[0, 1], 60], [[0, 1, 2], 10], [[0, 1, 2, 3], 30],
                  [[0, 1, 2, 4], 400], [[0, 1, 2, 4, 6], 50], [[0, 1, 2, 5], 250]]
    .map(([f, t]) => ({ frames: f, weight_ns: t * ms, samples: t }));
  return renderSession('hot', { program: 'app.lua', duration_ns: 1000 * ms, cpu_ns: 1000 * ms,
                                samples: 1000, frames, stacks });
}

// A saved memory profile: churn allocates 40 of the 46 MiB (30 in strings
// made by table.concat) and keeps 64 KiB; keep allocates 6 MiB of tables
// and keeps 5. Time: churn 600 ms, keep 300 ms. The heap climbs from
// 2 MiB to about 9 MiB, with a peak of 13.5 MiB at 700 ms.
const KiB = 1024, MiB = 1024 * KiB;
const HEAP_PEAK = 13.5 * MiB, HEAP_PEAK_AT = 0.7;
function memorySession () {
  const ms = 1e6, n = 1000;
  const frames = [
    { name: 'main', file: 'mem.lua', line: 1, kind: 'lua', library: false },
    { name: 'churn', file: 'mem.lua', line: 5, kind: 'lua', library: false },
    { name: 'keep', file: 'mem.lua', line: 12, kind: 'lua', library: false },
    { name: 'table.concat', file: '[C]', line: 0, kind: 'c' },
    { name: '[string]', file: '', line: 0, kind: 'pseudo' },
    { name: '[table]', file: '', line: 0, kind: 'pseudo' }
  ];
  const stacks = [
    { frames: [0], weight_ns: 100 * ms, samples: 100 },
    { frames: [0, 1], weight_ns: 500 * ms, samples: 500, alloc_bytes: 10 * MiB, alloc_objects: 9000,
      live_bytes: 64 * KiB, live_objects: 40 },
    { frames: [0, 1, 3, 4], weight_ns: 100 * ms, samples: 100, alloc_bytes: 30 * MiB, alloc_objects: 20000 },
    { frames: [0, 2], weight_ns: 300 * ms, samples: 300 },
    { frames: [0, 2, 5], weight_ns: 0, samples: 0, alloc_bytes: 6 * MiB, alloc_objects: 3000,
      live_bytes: 5 * MiB, live_objects: 2900 }
  ];
  const t_ns = [], stack = [], heap = [];
  for (let i = 0; i < n; i++) {
    t_ns.push((i + 1) * ms);
    stack.push([1, 1, 1, 1, 1, 2, 0, 3, 3, 3][i % 10]);
    heap.push(i === HEAP_PEAK_AT * n ? HEAP_PEAK : Math.round(2 * MiB + 7 * MiB * i / n));
  }
  return renderSession('memory', { program: 'mem.lua', duration_ns: n * ms, cpu_ns: n * ms, samples: n,
                                   memory_rate: 512 * KiB, frames, stacks, timeline: { t_ns, stack, heap } });
}

// garbage() makes strings and drops them; hoard() keeps tables in a global
const MEMORY = `
kept = {}
local function garbage () local s = {} for i = 1, 100 do s[i] = ("x"):rep(i) .. i end return #s end
local function hoard () for i = 1, 20 do kept[#kept + 1] = { i, i + 1 } end end
local t0 = os.clock()
repeat garbage() hoard() until os.clock() - t0 >= 0.3
`;

before(async () => {
  pages.many = manySmall();
  pages.memory = memorySession();
  pages.hot = hotLibrary();
  mkdirSync(join(dir, 'share/lua/5.4'), { recursive: true });
  writeFileSync(join(dir, 'share/lua/5.4/mylib.lua'), MYLIB);
  pages.shares = profile('shares', SHARES, ['--clock', 'cpu']);
  pages.hostile = profile('hostile', HOSTILE);
  pages.badUtf8 = profile('bad-utf8', BAD_UTF8);
  pages.library = profile('library', LIBRARY);
  pages.memoryRun = profile('memory-run', MEMORY, ['--memory']);
  context = await launchChromium(join(dir, 'profile'), { viewport: { width: 1300, height: 900 } });
});

after(async () => {
  if (context) await context.close();
  rmSync(dir, { recursive: true, force: true });
});

// Opens a report; records what would show that something went wrong.
async function open (file, colorScheme = 'light') {
  const { page, seen } = await watchedPage(context);
  await page.emulateMedia({ colorScheme });
  await page.goto('file://' + file);
  await page.waitForSelector('html[data-ready="true"]', { timeout: 20000 });
  return { page, seen };
}

function clean (seen) {
  assert.deepEqual(seen.errors, [], 'console or page errors');
  assert.deepEqual(seen.dialogs, [], 'dialogs');
  const outside = seen.requests.filter(u => !u.startsWith('file://') && !u.startsWith('data:'));
  assert.deepEqual(outside, [], 'requests beyond the file itself');
}

// The rows of the call tree as shown.
function rows (page) {
  return page.$$eval('#tree .row:not(.more)', list => list.map(r => ({
    name: r.querySelector('.fn') ? r.querySelector('.fn').textContent : null,
    where: r.querySelector('.where') ? r.querySelector('.where').textContent : '',
    share: parseFloat(r.querySelector('.c-share').textContent),
    level: +r.getAttribute('aria-level'),
    expanded: r.getAttribute('aria-expanded'),
    match: r.classList.contains('match'),
    marks: Array.from(r.querySelectorAll('mark'), m => m.textContent),
    hidden: r.querySelector('.hidden-frames') ? r.querySelector('.hidden-frames').textContent : null,
    badge: r.querySelector('.badge') ? r.querySelector('.badge').textContent : null
  })));
}

function row (page, name) {
  return page.locator('#tree .row').filter({
    has: page.locator('.fn', { hasText: new RegExp('^' + name.replace(/[^\w]/g, '\\$&') + '$') })
  });
}

// The session in the page, and the share of the run under frame 'name'
// computed from its stacks, independently of the page's script.
async function expectedShare (page, name) {
  const data = await page.evaluate(() => JSON.parse(document.getElementById('sprof-data').textContent));
  let total = 0, under = 0;
  for (const s of data.stacks) {
    total += s.weight_ns;
    if (s.frames.some(f => data.frames[f].name === name)) under += s.weight_ns;
  }
  return { data, share: 100 * under / total };
}

// Pixels painted on a canvas.
function painted (page, id) {
  return page.evaluate(id => {
    const c = document.getElementById(id);
    const img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < img.length; i += 4) if (img[i] > 0) n++;
    return n;
  }, id);
}

test('a report loads with no errors, no dialogs and no requests', async () => {
  for (const file of Object.values(pages)) {
    const { page, seen } = await open(file);
    await page.click('#tab-flame');
    await page.click('#tab-timeline');
    await page.click('#tab-tree');
    clean(seen);
    await page.close();
  }
});

test('the header tells about the run', async () => {
  const { page, seen } = await open(pages.shares);
  const data = await page.evaluate(() => JSON.parse(document.getElementById('sprof-data').textContent));
  assert.match(await page.textContent('#program'), /shares\.lua$/);
  assert.match(await page.title(), /shares\.lua/);
  assert.match(await page.textContent('#recorded'), /^Recorded \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  const facts = await page.$$eval('.fact', fs => Object.fromEntries(
    fs.map(f => [f.querySelector('.label').textContent, f.querySelector('.value').textContent])));
  assert.deepEqual(Object.keys(facts), ['Duration', 'Samples', 'Interval', 'Clock', 'CPU', 'Overhead']);
  assert.ok(facts.Samples.startsWith(data.samples.toLocaleString('en-US') + ' '), facts.Samples);
  assert.equal(facts.Interval, '1 ms');
  assert.equal(facts.Clock, 'CPU');
  const cpu = Math.round(100 * data.cpu_ns / data.duration_ns);
  assert.equal(facts.CPU, cpu + '% of wall time');
  clean(seen);
  await page.close();
});

test('the call tree shows the hot functions with their shares, the hot path open', async () => {
  const { page, seen } = await open(pages.shares);
  const shown = await rows(page);
  const seven = shown.find(r => r.name === 'seven');
  const three = shown.find(r => r.name === 'three');
  assert.ok(seven && three, JSON.stringify(shown));
  // the workload: 70% and 30%
  assert.ok(Math.abs(seven.share - 70) <= 5, 'seven: ' + seven.share);
  assert.ok(Math.abs(three.share - 30) <= 5, 'three: ' + three.share);
  // what the page shows is what the session holds
  assert.ok(Math.abs(seven.share - (await expectedShare(page, 'seven')).share) < 0.06);
  assert.ok(Math.abs(three.share - (await expectedShare(page, 'three')).share) < 0.06);
  // the largest first; each function's file:line
  assert.ok(shown.indexOf(seven) < shown.indexOf(three));
  assert.match(seven.where, /shares\.lua:\d+$/);
  // open on load down to the work both do
  const work = shown.filter(r => r.name === 'work');
  assert.equal(work.length, 2);
  assert.ok(work.every(r => r.level === seven.level + 1));
  assert.equal(seven.expanded, 'true');
  clean(seen);
  await page.close();
});

test('clicks expand and collapse; alt-click does a whole subtree', async () => {
  const { page, seen } = await open(pages.shares);
  const count = async name => (await rows(page)).filter(r => r.name === name).length;
  assert.equal(await count('work'), 2);
  await row(page, 'seven').click();
  assert.equal(await row(page, 'seven').getAttribute('aria-expanded'), 'false');
  assert.equal(await count('work'), 1);
  await row(page, 'seven').click();
  assert.equal(await count('work'), 2);
  // alt-click on the top: everything under it closes, then opens
  await row(page, '(main chunk)').click({ modifiers: ['Alt'] });
  assert.deepEqual((await rows(page)).map(r => r.name).filter(n => n !== '(outside Lua)'),
                   ['(main chunk)']);
  await row(page, '(main chunk)').click({ modifiers: ['Alt'] });
  const all = await rows(page);
  assert.ok(all.length >= 5 && all.every(r => r.expanded !== 'false'), JSON.stringify(all));
  // the keyboard: down to seven, left closes it, right opens it
  await row(page, '(main chunk)').click();
  await row(page, '(main chunk)').click();
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.fn').textContent), 'seven');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await row(page, 'seven').getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('ArrowRight');
  assert.equal(await row(page, 'seven').getAttribute('aria-expanded'), 'true');
  clean(seen);
  await page.close();
});

test('search highlights the matching frames', async () => {
  const { page, seen } = await open(pages.shares);
  await page.fill('#search', 'THR');
  await page.waitForSelector('#tree .row.match');
  let shown = await rows(page);
  const matched = shown.filter(r => r.match);
  assert.deepEqual(matched.map(r => r.name), ['three']);
  assert.deepEqual(matched[0].marks, ['thr']);
  assert.ok(shown.filter(r => !r.match).every(r => r.marks.length === 0));
  assert.match(await page.textContent('#search-info'), /^1 function · \d+\.\d% of the time$/);
  // a file matches too: every frame of the script
  await page.fill('#search', 'shares.lua');
  await page.waitForFunction(() => document.querySelectorAll('#tree .row.match').length >= 4);
  // Enter goes to a match; Escape clears
  await page.press('#search', 'Enter');
  await page.waitForSelector('#tree .row.current.match');
  await page.fill('#search', 'nothing-like-this');
  await page.waitForFunction(() => document.getElementById('search-info').textContent === 'no match');
  await page.press('#search', 'Escape');
  await page.waitForFunction(() => !document.querySelector('#tree .row.match, #tree mark'));
  shown = await rows(page);
  assert.ok(shown.some(r => r.name === 'three'));
  clean(seen);
  await page.close();
});

test('the flame graph draws the tree and zooms on click', async () => {
  const { page, seen } = await open(pages.shares);
  await page.click('#tab-flame');
  assert.equal(await page.isVisible('#view-flame'), true);
  assert.equal(await page.isVisible('#view-tree'), false);
  assert.equal(await page.getAttribute('#tab-flame', 'aria-selected'), 'true');
  assert.ok(await painted(page, 'flame') > 1000);
  // rows: the root, (main chunk), then seven (widest, at the left) and three
  const box = await page.locator('#flame').boundingBox();
  await page.mouse.move(box.x + 10, box.y + 2 * 20 + 10);
  assert.equal(await page.textContent('#tooltip .t-name'), 'seven');
  await page.mouse.move(box.x + box.width * 0.9, box.y + 2 * 20 + 10);
  assert.equal(await page.textContent('#tooltip .t-name'), 'three');
  await page.mouse.click(box.x + box.width * 0.9, box.y + 2 * 20 + 10);
  assert.equal(await page.textContent('#flame-crumbs .here'), 'three');
  // zoomed: three is now as wide as the graph
  await page.mouse.move(box.x + 10, box.y + 2 * 20 + 10);
  assert.equal(await page.textContent('#tooltip .t-name'), 'three');
  await page.keyboard.press('Escape');
  assert.equal(await page.textContent('#flame-crumbs .here'), '(main chunk)');
  await page.click('#flame-crumbs button >> nth=0');
  assert.equal(await page.isVisible('#flame-crumbs .reset'), false);
  clean(seen);
  await page.close();
});

test('the timeline shows the stacks over time and zooms into a range', async () => {
  const { page, seen } = await open(pages.shares);
  await page.click('#tab-timeline');
  assert.equal(await page.isVisible('#view-timeline'), true);
  assert.equal(await page.isVisible('#view-tree'), false);
  assert.ok(await painted(page, 'timeline') > 1000);
  const box = await page.locator('#timeline').boundingBox();
  // the row under (main chunk) holds seven and three, alternating
  const names = new Set();
  for (let x = 5; x < box.width; x += 20) {
    await page.mouse.move(box.x + x, box.y + 24 + 20 + 10);
    if (await page.isVisible('#tooltip')) names.add(await page.textContent('#tooltip .t-name'));
  }
  assert.deepEqual([...names].sort(), ['seven', 'three']);
  const before = await page.textContent('#timeline-range');
  await page.mouse.move(box.x + 100, box.y + 60);
  await page.mouse.down();
  await page.mouse.move(box.x + 300, box.y + 60, { steps: 5 });
  await page.mouse.up();
  assert.notEqual(await page.textContent('#timeline-range'), before);
  assert.equal(await page.isVisible('#timeline-range .reset'), true);
  await page.keyboard.press('Escape');
  assert.equal(await page.textContent('#timeline-range'), before);
  // keys switch views
  await page.keyboard.press('1');
  assert.equal(await page.isVisible('#view-tree'), true);
  clean(seen);
  await page.close();
});

test('names that are markup show as text and run nothing', async () => {
  const { page, seen } = await open(pages.hostile);
  const shown = await rows(page);
  assert.ok(shown.some(r => r.name === '<b>x</b>'), JSON.stringify(shown));
  assert.ok(shown.some(r => r.where === '</script><img src=x onerror=alert(1)>'), JSON.stringify(shown));
  await page.fill('#search', '<b>');
  await page.waitForSelector('#tree .row.match');
  await page.click('#tab-flame');
  const box = await page.locator('#flame').boundingBox();
  for (let x = 5; x < box.width; x += 40) await page.mouse.move(box.x + x, box.y + 2 * 20 + 10);
  await page.click('#tab-timeline');
  await page.click('#tab-tree');
  assert.equal(await page.evaluate(() => document.querySelectorAll('img, b, iframe, object').length), 0);
  assert.equal(await page.evaluate(() => document.scripts.length), 2);
  clean(seen);
  await page.close();
});

test('names that are not UTF-8 do not break the page', async () => {
  const { page, seen } = await open(pages.badUtf8);
  const shown = await rows(page);
  const odd = shown.filter(r => (r.name + r.where).includes('\uFFFD'));
  assert.ok(odd.length >= 3, JSON.stringify(shown));
  assert.ok(shown.some(r => r.where.includes('\u2028\u2029')));
  const raw = readFileSync(pages.badUtf8);
  assert.equal(raw.includes(Buffer.from('\u2028')), false);
  assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(raw));
  clean(seen);
  await page.close();
});

test('library frames are grouped, and a switch shows them', async () => {
  const { page, seen } = await open(pages.library);
  let shown = await rows(page);
  const lib = shown.find(r => r.name === 'M.process');
  assert.ok(lib, JSON.stringify(shown));
  assert.match(lib.hidden, /^\[\d+ frames? hidden: [\d.]+ (s|ms|µs)\]$/);
  assert.equal(lib.badge, 'lib');
  assert.ok(shown.some(r => r.name === 'callback'));
  assert.ok(!shown.some(r => r.name === 'table.concat' || r.name === 'inner'));
  await page.click('label.switch');
  await page.waitForFunction(() => !document.querySelector('.hidden-frames'));
  await row(page, 'M.process').click({ modifiers: ['Alt'] });
  await row(page, 'M.process').click({ modifiers: ['Alt'] });
  shown = await rows(page);
  assert.ok(shown.some(r => r.name === 'inner'), JSON.stringify(shown));
  const concat = shown.find(r => r.name === 'table.concat');
  assert.ok(concat, JSON.stringify(shown));
  assert.equal(concat.badge, 'C');
  assert.equal(concat.where, '[C]');
  await page.click('label.switch');
  await page.waitForSelector('.hidden-frames');
  clean(seen);
  await page.close();
});

test('a library frame with a large own time shows in its group; the group keeps its hidden time', async () => {
  const { page, seen } = await open(pages.hot);
  const shown = await rows(page);
  const self = Object.fromEntries(await page.$$eval('#tree .row:not(.more)', list =>
    list.map(r => [r.querySelector('.fn').textContent, r.querySelector('.c-self').textContent])));
  const run = shown.find(r => r.name === 'M.run'), crunch = shown.find(r => r.name === 'crunch');
  assert.ok(run && crunch, JSON.stringify(shown));
  assert.equal(run.hidden, '[2 frames hidden: 40.0 ms]');
  assert.equal(self['M.run'], '60.0 ms');
  assert.equal(crunch.level, run.level + 1);
  assert.equal(crunch.hidden, '[1 frame hidden: 50.0 ms]');
  assert.equal(self.crunch, '400 ms');
  assert.equal(shown.find(r => r.name === 'callback').level, run.level + 1);
  assert.ok(!shown.some(r => ['walk', 'step', 'string.rep'].includes(r.name)), JSON.stringify(shown));
  clean(seen);
  await page.close();
});

test('small children wait behind a "more" row; the host and interpreter fold away', async () => {
  const { page, seen } = await open(pages.many);
  let shown = await rows(page);
  const names = shown.map(r => r.name);
  // host_loop and luaV_execute are folded; the host's own time shows apart
  assert.deepEqual(names.slice(0, 3), ['main', 'big', 'inflate']);
  assert.equal(shown.find(r => r.name === '(outside Lua)').share, 30.3);
  assert.ok(!names.includes('host_loop') && !names.includes('luaV_execute'));
  const more = () => page.$$eval('#tree .row.more', rs => rs.map(r => r.textContent));
  assert.equal(shown.filter(r => /^tiny/.test(r.name)).length, 0);
  assert.deepEqual(await more(), [ (await more())[0] ]);
  assert.match((await more())[0], /\+ 450 more frames \(show 200\)$/);
  await page.click('#tree .row.more');
  assert.equal((await rows(page)).filter(r => /^tiny/.test(r.name)).length, 200);
  assert.match((await more())[0], /\+ 250 more frames \(show 200\)$/);
  await page.click('#tree .row.more');
  await page.click('#tree .row.more');
  shown = await rows(page);
  assert.equal(shown.filter(r => /^tiny/.test(r.name)).length, 450);
  assert.deepEqual(await more(), []);
  // they come before the row of the time outside Lua, largest first
  assert.equal(shown[shown.length - 1].name, '(outside Lua)');
  clean(seen);
  await page.close();
});

test('the dark theme follows the system', async () => {
  const luminance = async page => page.evaluate(() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  });
  const light = await open(pages.shares, 'light');
  const dark = await open(pages.shares, 'dark');
  assert.ok(await luminance(light.page) > 0.8);
  assert.ok(await luminance(dark.page) < 0.2);
  await dark.page.click('#tab-flame');
  assert.ok(await painted(dark.page, 'flame') > 1000);
  clean(light.seen);
  clean(dark.seen);
  await light.page.close();
  await dark.page.close();
});

// The facts of the header, by label.
function facts (page) {
  return page.$$eval('.fact', fs => Object.fromEntries(
    fs.map(f => [f.querySelector('.label').textContent, f.querySelector('.value').textContent])));
}

// The weights offered, and the one chosen.
function weights (page) {
  return page.$$eval('#weights [role="radio"]', bs => bs.map(b => b.textContent +
    (b.getAttribute('aria-checked') === 'true' ? '*' : '')));
}

test('a memory profile weighs the tree by bytes allocated, or live at the end', async () => {
  const { page, seen } = await open(pages.memory);
  assert.deepEqual(await weights(page), ['Allocated*', 'Live', 'Time']);
  const head = await facts(page);
  assert.equal(head.Allocated, '46.0 MiB 32,000 objects');
  assert.equal(head['Live at end'], '5.1 MiB');
  assert.equal(head['Sampled every'], '512 KiB');
  // allocated: churn first, in bytes, with table.concat's strings under it
  let shown = await rows(page);
  const top = () => shown.filter(r => r.level === 2)[0];
  assert.equal(top().name, 'churn');
  assert.equal(top().share, 87.0);
  assert.equal(await row(page, 'churn').locator('.c-total').textContent(), '40.0 MiB');
  assert.equal(await row(page, 'churn').locator('.c-self').textContent(), '10.0 MiB');
  assert.equal(await row(page, 'table.concat').locator('.c-total').textContent(), '30.0 MiB');
  assert.ok(shown.some(r => r.name === '[string]'), JSON.stringify(shown));
  // live: keep holds nearly all of it
  await page.click('#weight-live');
  assert.deepEqual(await weights(page), ['Allocated', 'Live*', 'Time']);
  shown = await rows(page);
  assert.equal(top().name, 'keep');
  assert.equal(top().share, 98.8);
  assert.equal(await row(page, 'keep').locator('.c-total').textContent(), '5.0 MiB');
  assert.ok(shown.some(r => r.name === '[table]'), JSON.stringify(shown));
  assert.ok(!shown.some(r => r.name === 'table.concat'), 'nothing of table.concat is live');
  await page.fill('#search', 'keep');
  await page.waitForFunction(() => /of the live bytes$/.test(document.getElementById('search-info').textContent));
  assert.equal(await page.textContent('#search-info'), '1 function · 98.8% of the live bytes');
  await page.fill('#search', '');
  // the flame graph weighs the same: keep is the widest under main
  await page.click('#tab-flame');
  const box = await page.locator('#flame').boundingBox();
  await page.mouse.move(box.x + 10, box.y + 2 * 20 + 10);
  assert.equal(await page.textContent('#tooltip .t-name'), 'keep');
  assert.match(await page.textContent('#tooltip'), /total5\.0 MiB/);
  // time: in seconds again
  await page.click('#tab-tree');
  await page.click('#weight-time');
  assert.equal(await row(page, 'churn').locator('.c-total').textContent(), '600 ms');
  clean(seen);
  await page.close();
});

// The heap line as drawn: its path, the peak's dot and label.
function heapLine (page) {
  return page.evaluate(() => {
    const svg = document.getElementById('heap'), q = s => svg.querySelector(s);
    return {
      shown: !document.getElementById('heap-wrap').hidden && svg.getBoundingClientRect().height > 0,
      width: svg.getBoundingClientRect().width,
      line: q('.heap-line') ? q('.heap-line').getAttribute('d') : '',
      area: q('.heap-area') ? q('.heap-area').getAttribute('d') : '',
      scale: q('.heap-scale') ? q('.heap-scale').textContent : null,
      peak: q('.heap-peak') ? +q('.heap-peak').getAttribute('cx') : null,
      label: q('.heap-peak-label') ? q('.heap-peak-label').textContent : null
    };
  });
}

test('the timeline draws the heap under the stacks, its peak marked, and zooms with it', async () => {
  const { page, seen } = await open(pages.memory);
  await page.click('#tab-timeline');
  let heap = await heapLine(page);
  assert.ok(heap.shown, JSON.stringify(heap));
  assert.ok(heap.line.split('L').length > 500, 'a step per pixel: ' + heap.line.slice(0, 80));
  assert.match(heap.area, /Z$/);
  assert.equal(heap.scale, 'heap 15.0 MiB');
  assert.equal(heap.label, 'peak 13.5 MiB');
  assert.ok(Math.abs(heap.peak - HEAP_PEAK_AT * heap.width) <= 3, JSON.stringify(heap));
  // hovering shows the size there
  const box = await page.locator('#heap').boundingBox();
  await page.mouse.move(box.x + heap.peak, box.y + box.height / 2);
  assert.equal(await page.textContent('#tooltip .t-name'), 'Lua heap');
  assert.match(await page.textContent('#tooltip'), /size13\.5 MiB/);
  // a stack's tooltip tells the heap size too; the timeline stays of time
  const canvas = await page.locator('#timeline').boundingBox();
  await page.mouse.move(canvas.x + 30, canvas.y + 24 + 10);
  assert.equal(await page.textContent('#tooltip .t-name'), 'main');
  assert.match(await page.textContent('#tooltip'), /heap[\d.]+ MiB/);
  assert.match(await page.textContent('#tooltip'), /total1\.000 s {2}100%self100 ms/);
  // zoomed into the first half: the peak there is its last, lower
  await page.mouse.move(canvas.x + 2, canvas.y + 60);
  await page.mouse.down();
  await page.mouse.move(canvas.x + canvas.width / 2, canvas.y + 60, { steps: 5 });
  await page.mouse.up();
  heap = await heapLine(page);
  assert.match(heap.label, /^peak 5\.[0-9] MiB$/);
  assert.ok(heap.peak > heap.width * 0.95, JSON.stringify(heap));
  await page.keyboard.press('Escape');
  assert.equal((await heapLine(page)).label, 'peak 13.5 MiB');
  clean(seen);
  await page.close();
});

test('every time profile carries the heap line; a real memory profile shows bytes', async () => {
  const { page, seen } = await open(pages.shares);
  assert.equal(await page.isVisible('#weights'), false);
  await page.click('#tab-timeline');
  const heap = await heapLine(page);
  assert.ok(heap.shown, JSON.stringify(heap));
  assert.match(heap.label, /^peak [\d.]+ (KiB|MiB)$/);
  clean(seen);
  await page.close();

  const run = await open(pages.memoryRun, 'dark');
  assert.deepEqual(await weights(run.page), ['Allocated*', 'Live', 'Time']);
  assert.match((await facts(run.page)).Allocated, /^[\d.]+ MiB [\d,]+ objects$/);
  const shown = await rows(run.page);
  assert.ok(shown.some(r => r.name === 'garbage') && shown.some(r => r.name === 'hoard'), JSON.stringify(shown));
  assert.match(await row(run.page, 'garbage').locator('.c-total').textContent(), /^[\d.]+ (KiB|MiB)$/);
  await run.page.click('#weight-live');
  assert.equal((await rows(run.page)).filter(r => r.level === 2)[0].name, 'hoard');
  await run.page.click('#tab-timeline');
  assert.ok((await heapLine(run.page)).shown);
  clean(run.seen);
  await run.page.close();
});
