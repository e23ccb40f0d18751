// Finds a Chromium-family browser for the browser and E2E suites: $CHROMIUM_PATH, then the usual system
// paths, then Playwright's own downloaded browsers. Prints how to get one when there is none.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const SYSTEM_PATHS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

export const INSTALL_HINT =
  'No Chromium-family browser found. Install one and try again:\n' +
  '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y chromium\n' +
  '  anywhere with internet access: npx playwright install chromium\n' +
  'or point CHROMIUM_PATH at a Chrome/Chromium executable.';

/** @returns {string | null} */
export function findBrowser() {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new Error(`CHROMIUM_PATH is set to ${fromEnv}, which does not exist.`);
  }
  for (const p of SYSTEM_PATHS) if (existsSync(p)) return p;
  try {
    const require = createRequire(import.meta.url);
    const { chromium } = require('playwright');
    const p = chromium.executablePath();
    if (p && existsSync(p)) return p;
  } catch {
    // playwright not installed, or no browser of its own
  }
  return null;
}

/** Like findBrowser, but exits with the install hint when there is none. */
export function requireBrowser() {
  const path = findBrowser();
  if (!path) {
    console.error(INSTALL_HINT);
    process.exit(1);
  }
  return path;
}

/** Flags every headless run needs here: root has no sandbox, and the closed network must not be dialled. */
export function baseBrowserArgs() {
  const args = ['--disable-background-networking', '--disable-component-update', '--no-first-run'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return args;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(requireBrowser());
}
