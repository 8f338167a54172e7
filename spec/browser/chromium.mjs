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
