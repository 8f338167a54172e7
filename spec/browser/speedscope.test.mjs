// Our speedscope files, read by speedscope itself: they validate against
// the JSON schema the npm package ships, and speedscope's own app (served
// here on 127.0.0.1, opened in Debian's headless Chromium with
// #profileURL=...) imports them and shows our functions with our times.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import Ajv from 'ajv';
import { launchChromium } from './chromium.mjs';

const build = resolve(process.env.SPROF_BUILD || 'build');
const sprofLua = join(build, 'sprof-lua');
const app = resolve('node_modules/speedscope/dist/release');
const dir = mkdtempSync(join(tmpdir(), 'sprof-speedscope-'));
const files = {};
let memory;  // not in files: its unit is bytes
let server, base, browser;  // browser: a persistent context

// seven and three do 7 and 3 parts of the same work, in their own bodies
// (seven on line 3). N steps take 2 ms of CPU or more, so that each call
// is sampled; they take turns at least 6 times, for 0.3 s or more.
const SHARES = `
local N = 1000 repeat N = 2 * N local t0, x = os.clock(), 0 for i = 1, N do x = x + i % 7 end until os.clock() - t0 >= 0.002
local function seven () local x = 0 for i = 1, 7 * N do x = x + i % 7 end return x end
local function three () local x = 0 for i = 1, 3 * N do x = x + i % 7 end return x end
local turns, t0 = 0, os.clock()
repeat seven() three() turns = turns + 1 until turns >= 6 and os.clock() - t0 >= 0.3
`;

// names that are markup, quotes or not UTF-8 at all
const HOSTILE = `
local function spin () local t0, x = os.clock(), 0 repeat for i = 1, 1e5 do x = x + i end until os.clock() - t0 >= 0.03 return x end
local t = {}
t['<img src=x onerror=alert(1)>"\\\\'] = spin
t["f\\255\\254"] = spin
local chunk = load("local spin = ... spin()", "=</script>\\226\\128\\168")
t['<img src=x onerror=alert(1)>"\\\\']()
t["f\\255\\254"]()
chunk(spin)
string.rep("x", 1 << 24)
`;

// a memory profile (--memory): keep holds on to strings, drop lets its
// tables go; speedscope gets the bytes allocated
const MEMORY = `
kept = {}
local function keep () local t = {} for i = 1, 50 do t[i] = ("x"):rep(200 + i) end kept[#kept + 1] = t end
local function drop () local t = {} for i = 1, 50 do t[i] = { i, i, i } end return #t end
local t0 = os.clock()
repeat keep() drop() until os.clock() - t0 >= 0.2
`;


function sprof (args) {
  return execFileSync(sprofLua, args, {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28,
    env: { ...process.env, XDG_STATE_HOME: dir }
  });
}

// A script run saved as JSON, then rendered from it as speedscope and
// collapsed stacks: both formats of one session.
function profile (name, code, options = []) {
  writeFileSync(join(dir, name + '.lua'), code);
  sprof(['-r', 'json', '-o', name + '.json', ...options, name + '.lua']);
  sprof(['--load', name + '.json', '-r', 'speedscope', '-o', name + '.speedscope.json']);
  const collapsed = sprof(['--load', name + '.json', '-r', 'collapsed', '-o', '-']).toString();
  return { file: name + '.speedscope.json',
           json: JSON.parse(readFileSync(join(dir, name + '.speedscope.json'), 'utf8')),
           session: JSON.parse(readFileSync(join(dir, name + '.json'), 'utf8')),
           collapsed };
}

// Our time (ns) in the body of a function, from the collapsed stacks.
function selfTime (collapsed, name) {
  let us = 0;
  for (const line of collapsed.split('\n')) {
    const m = line.match(/^(.*) (\d+)$/);
    if (m && m[1].split(';').pop().split(' ')[0] === name) us += Number(m[2]);
  }
  return us * 1000;
}

// speedscope's app and our files, from one local server.
function serve () {
  return new Promise(ready => {
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      const root = path.startsWith('/files/') ? dir : app;
      const file = normalize(join(root, path.replace(/^\/files\//, '/')));
      if (!file.startsWith(root) || !existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      const types = { '.html': 'text/html', '.js': 'text/javascript',
                      '.css': 'text/css', '.json': 'application/json',
                      '.wasm': 'application/wasm' };
      res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream',
                           'Access-Control-Allow-Origin': '*' });
      res.end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${server.address().port}`;
      ready();
    });
  });
}

before(async () => {
  files.shares = profile('shares', SHARES);
  files.cpu = profile('cpu', SHARES, ['--clock', 'cpu']);
  files.hostile = profile('hostile', HOSTILE);
  memory = profile('memory', MEMORY, ['--memory']);
  await serve();
  // a fresh profile directory: launchPersistentContext's own
  browser = await launchChromium(join(dir, 'chromium'));
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('our files validate against the schema speedscope ships', () => {
  const schema = JSON.parse(readFileSync(join(app, 'file-format-schema.json'), 'utf8'));
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  for (const [name, { json }] of Object.entries(files)) {
    assert.ok(validate(json), `${name}: ${JSON.stringify(validate.errors)}`);
    assert.equal(json.profiles.length, 1);
    assert.equal(json.profiles[0].type, 'sampled');
  }
});

test('the weights add up to the session\'s time, in time order', () => {
  for (const [name, { json, session }] of Object.entries(files)) {
    const p = json.profiles[0];
    const sum = p.weights.reduce((a, b) => a + b, 0);
    const total = session.stacks.reduce((a, s) => a + s.weight_ns, 0);
    assert.equal(p.unit, 'nanoseconds');
    assert.equal(p.samples.length, p.weights.length);
    assert.equal(sum, total, name);
    assert.equal(p.endValue - p.startValue, total, name);
    for (const stack of p.samples)
      for (const f of stack) assert.ok(f >= 0 && f < json.shared.frames.length);
  }
  // seven and three take turns: the timeline shows each of their six calls
  const { json } = files.shares;
  const frames = json.shared.frames;
  const leaf = s => frames[s[s.length - 1]].name;
  const runs = [];
  for (const s of json.profiles[0].samples)
    if (['seven', 'three'].includes(leaf(s)) && leaf(s) !== runs[runs.length - 1])
      runs.push(leaf(s));
  assert.ok(runs.length >= 10, runs.join(' '));
  const seven = frames.find(f => f.name === 'seven');
  assert.match(seven.file, /shares\.lua$/);
  assert.equal(seven.line, 3);
});

// Opens a file in speedscope's app; records dialogs and page errors.
async function open (file) {
  const page = await browser.newPage();
  const seen = { dialogs: [], errors: [] };
  page.on('dialog', d => { seen.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', e => seen.errors.push(String(e)));
  const url = `${base}/index.html#profileURL=${encodeURIComponent(`${base}/files/${file}`)}`;
  const refused = new Promise(done => page.once('dialog', done));
  await page.goto(url);
  // imported (the title names the profile), or refused (an alert)
  await Promise.race([
    page.waitForFunction(() => / - speedscope$/.test(document.title), null,
                         { timeout: 30000 }),
    refused]);
  return { page, seen };
}

// A duration as speedscope writes it ("315.54ms", "1.02s", "980.00µs"), in ns.
function ns (text) {
  const m = text.match(/([\d.]+)\s*(ns|µs|us|ms|s)\b/);
  assert.ok(m, `not a duration: ${text}`);
  return Number(m[1]) * { ns: 1, µs: 1e3, us: 1e3, ms: 1e6, s: 1e9 }[m[2]];
}

test('speedscope imports our files: title, no "Unrecognized format"', async () => {
  // first, that a file speedscope cannot read does show the alert here
  writeFileSync(join(dir, 'not-a-profile.txt'), 'not a profile\n');
  const bad = await open('not-a-profile.txt');
  assert.match(bad.seen.dialogs.join(), /Unrecognized format/);
  await bad.page.close();
  for (const [name, { file, json }] of Object.entries(files)) {
    const { page, seen } = await open(file);
    assert.equal(await page.title(), `${json.name} - speedscope`, name);
    assert.deepEqual(seen.dialogs, [], `${name}: dialogs`);
    assert.deepEqual(seen.errors, [], `${name}: page errors`);
    await page.close();
  }
});

test('speedscope shows our functions with our times (sandwich view)', async () => {
  const { collapsed } = files.shares;
  const { page, seen } = await open(files.shares.file);
  await page.getByText('Sandwich').click();
  const rows = await page.waitForFunction(() => {
    const text = document.body.innerText;
    return text.includes('Symbol Name') && text.includes('seven') && text;
  }, null, { timeout: 30000 });
  const text = await rows.jsonValue();
  const total = selfTime(collapsed, 'seven') + selfTime(collapsed, 'three');
  for (const name of ['seven', 'three']) {
    // a row: total, self, name
    const m = text.match(new RegExp(`([\\d.]+\\s*[µumn]?s) \\([\\d.<]+%\\)\\s+([\\d.]+\\s*[µumn]?s) \\([\\d.<]+%\\)\\s+${name}\\b`));
    assert.ok(m, `${name} not in the sandwich table:\n${text.slice(0, 800)}`);
    const ours = selfTime(collapsed, name);
    assert.ok(Math.abs(ns(m[2]) - ours) <= 0.01 * total,
              `${name}: speedscope ${m[2]}, ours ${ours / 1e6} ms`);
  }
  assert.deepEqual(seen.dialogs, []);
  await page.close();
});

test('a memory profile is in bytes: it validates, adds up and opens', async () => {
  const schema = JSON.parse(readFileSync(join(app, 'file-format-schema.json'), 'utf8'));
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const { json, session, file } = memory;
  assert.ok(validate(json), JSON.stringify(validate.errors));
  assert.equal(json.profiles.length, 1);
  const p = json.profiles[0];
  assert.equal(p.type, 'sampled');
  assert.equal(p.unit, 'bytes');
  const sum = p.weights.reduce((a, b) => a + b, 0);
  const total = session.stacks.reduce((a, s) => a + (s.alloc_bytes || 0), 0);
  assert.ok(total >= 1 << 20, `allocated ${total} bytes`);
  assert.equal(sum, total);
  assert.equal(p.endValue - p.startValue, total);
  assert.ok(json.shared.frames.some(f => f.name === 'keep'));
  const { page, seen } = await open(file);
  assert.equal(await page.title(), `${json.name} - speedscope`);
  assert.deepEqual(seen.dialogs, [], 'dialogs');
  assert.deepEqual(seen.errors, [], 'page errors');
  await page.close();
});
