import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/**
 * A real headless browser for end-to-end tests: Debian's chromium (installed by stack/tools/install.sh;
 * browser downloads do not work on these machines) driven by playwright-core, with everything that would
 * reach the internet (updates, sync, QUIC) turned off. Each launch gets a fresh profile folder: playwright
 * creates one (--user-data-dir) per launch and removes it on close (it refuses that flag from the caller).
 */

/** Where Debian installs chromium. */
export const CHROMIUM = '/usr/bin/chromium';

/** A running browser with one context. */
export interface TestBrowser {
  readonly browser: Browser;
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Starts chromium headless; fails saying how to install it when it is missing. */
export async function startBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run 'bash stack/tools/install.sh' (it installs Debian's chromium)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return {
    browser,
    context,
    async close() {
      await browser.close();
    },
  };
}
