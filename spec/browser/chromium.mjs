// Debian's Chromium, headless, as the browser tests start it: the flags
// that work on this machine, a fresh profile directory, and none of the
// sanitizer preloads CI puts around lua5.4.
import { chromium } from 'playwright-core';

function cleanEnv () {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  delete env.UBSAN_OPTIONS;
  return env;
}

export function launchChromium (profileDir, options = {}) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    env: cleanEnv(),
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
