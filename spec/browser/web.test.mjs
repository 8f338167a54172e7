// The report of a profiled web request, opened in a real headless Chromium
// straight from the server: the example app (examples/web) on lighttpd
// (mod_magnet) and on lua-http, both on 127.0.0.1 on free ports, profiling
// on (SPROF_WEB=1). The servers are stopped in after(), and run under
// `timeout`, so none outlives a crashed test run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchChromium, watchedPage } from './chromium.mjs';

const build = resolve(process.env.SPROF_BUILD || 'build');
const example = resolve('examples/web');
const dir = mkdtempSync(join(tmpdir(), 'sprof-web-'));
const servers = [];
let context;

// A port nobody listens on now (the kernel's choice).
function freePort () {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

const sleep = ms => new Promise(ok => setTimeout(ok, ms));

// Starts one of the example's run scripts; resolves to its base URL once
// it answers (10 s at most).
async function start (script, port) {
  const env = { ...process.env, SPROF_BUILD: build, SPROF_WEB: '1' };
  delete env.SPROF_WEB_TOKEN;
  delete env.SPROF_WEB_DIR;
  const child = spawn('timeout', ['300', join(example, script), String(port)],
                      { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', d => { output += d; });
  child.stderr.on('data', d => { output += d; });
  servers.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    try {
      await fetch(base + '/ready-check');
      return base;
    } catch { await sleep(50); }
  }
  throw new Error(`${script} did not start: ${output}`);
}

async function stop (child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise(ok => child.once('exit', ok));
  child.kill('SIGTERM');  // timeout passes it on to the server
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}


const base = {};

before(async () => {
  try {
    base.lighttpd = await start('run-lighttpd', await freePort());
    base.luaHttp = await start('run-lua-http', await freePort());
  } catch (e) {
    await Promise.all(servers.map(stop));
    throw e;
  }
  context = await launchChromium(join(dir, 'profile'), { viewport: { width: 1300, height: 900 } });
});

after(async () => {
  if (context) await context.close();
  await Promise.all(servers.map(stop));
  rmSync(dir, { recursive: true, force: true });
});

// Opens an address; records what would show that something went wrong.
async function open (url) {
  const { page, seen } = await watchedPage(context);
  const response = await page.goto(url);
  await page.waitForSelector('html[data-ready="true"]', { timeout: 20000 });
  return { page, seen, response };
}

function clean (seen, url, status = 200) {
  // (Chromium logs an error for any page that comes with an error status)
  const expected = `Failed to load resource: the server responded with a status of ${status} `;
  assert.deepEqual(seen.errors.filter(e => status === 200 || !e.startsWith(expected)), [],
                   'console or page errors');
  assert.deepEqual(seen.dialogs, [], 'dialogs');
  // the report fetches nothing: the only request is the page itself
  assert.deepEqual(seen.requests.filter(u => !u.startsWith('data:')), [url], 'requests');
}

function names (page) {
  return page.$$eval('#tree .row:not(.more) .fn', list => list.map(e => e.textContent));
}

for (const [server, key] of [['lighttpd', 'lighttpd'], ['lua-http', 'luaHttp']]) {
  test(`${server}: /slow?profile opens as the report, its hot function in the tree`, async () => {
    const url = base[key] + '/slow?profile';
    const { page, seen, response } = await open(url);
    assert.equal(response.status(), 200);
    assert.equal(response.headers()['content-type'], 'text/html; charset=utf-8');
    assert.equal(await page.title(), 'GET /slow — sprof');
    assert.ok((await names(page)).includes('crunch'), JSON.stringify(await names(page)));
    await page.click('#tab-flame');
    await page.click('#tab-timeline');
    await page.click('#tab-tree');
    await page.fill('#search', 'crunch');
    await page.waitForSelector('#tree .row.match');
    clean(seen, url);
    await page.close();
  });

  test(`${server}: a failed request's report (status 500) opens too`, async () => {
    const url = base[key] + '/boom?profile';
    const { page, seen, response } = await open(url);
    assert.equal(response.status(), 500);
    assert.ok((await names(page)).includes('load_inventory'), JSON.stringify(await names(page)));
    clean(seen, url, 500);
    await page.close();
  });

  test(`${server}: without ?profile, the app's own page`, async () => {
    const page = await context.newPage();
    const response = await page.goto(base[key] + '/');
    assert.equal(response.status(), 200);
    assert.equal(await page.textContent('h1'), 'Catalogue');
    await page.close();
  });
}
