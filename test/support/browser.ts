import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium, which `.ci/run` installs. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Launches Debian's chromium headless for a browser test. The flags keep it off the network
 * (this machine's is closed: without them chromium retries background connections at every
 * start) and run it as root without a sandbox.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
