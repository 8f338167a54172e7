// Debian's Chromium, headless, as the browser tests start it: the flags
// that work on this machine, a fresh profile directory, and none of the
// sanitizer preloads CI puts around lua5.4.
import { existsSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

// Debian's package installs /usr/bin/chromium, Ubuntu's chromium-browser;
// SPROF_CHROMIUM names another.
function chromiumPath () {
  const candidates = [process.env.SPROF_CHROMIUM, '/usr/bin/chromium',
                      '/usr/bin/chromium-browser', '/snap/bin/chromium'];
  const found = candidates.find(p => p && existsSync(p));
  if (!found)
    throw new Error('no Chromium found: apt-get install chromium (cmake/install-deps --tests)');
  return found;
}

// Chromium writes outside its profile too (crash reports under
// ~/.config/chromium, dconf's cache under ~/.cache): it gets a home of its
// own, next to the profile directory, in the test's temporary directory.
function cleanEnv (home) {
  const env = { ...process.env, HOME: home };
  for (const name of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'XDG_CONFIG_HOME',
                      'XDG_CACHE_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME'])
    delete env[name];
  return env;
}

export function launchChromium (profileDir, options = {}) {
  const home = profileDir + '-home';
  mkdirSync(home, { recursive: true });
  return chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath(),
    headless: true,
    env: cleanEnv(home),
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run',
           '--disable-quic'],
    ...options
  });
}


// A new page that records what would show that something went wrong:
// console errors, uncaught exceptions, dialogs, and every request made.
export async function watchedPage (context) {
  const page = await context.newPage();
  const seen = { errors: [], dialogs: [], requests: [] };
  page.on('console', m => { if (m.type() === 'error') seen.errors.push(m.text()); });
  page.on('pageerror', e => seen.errors.push(String(e)));
  page.on('dialog', d => { seen.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', r => seen.requests.push(r.url()));
  return { page, seen };
}
