import { mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';
import { launchChromium } from './support/browser.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

/**
 * Cuts the web chat's sockets from the server side, and refuses new ones while `blocked`: a
 * network drop as the browser sees it.
 */
function networkSwitch(t: TestApp) {
  const open = new Set<Socket>();
  let blocked = false;
  t.app.http.server.prependListener('upgrade', (_request, socket: Socket) => {
    if (blocked) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return {
    down() {
      blocked = true;
      for (const socket of open) socket.destroy();
    },
    up() {
      blocked = false;
    },
  };
}

/**
 * Records the text of the newest agent bubble each time it changes, from inside the page (as
 * script text: the tests are type-checked without the DOM library).
 */
const RECORD_REPLY_STATES = `(() => {
  const states = [];
  window.replyStates = states;
  const transcript = document.getElementById('transcript');
  new MutationObserver(() => {
    const bubbles = transcript.querySelectorAll('.message.assistant .text');
    const text = bubbles[bubbles.length - 1]?.textContent ?? '';
    if (text && states.at(-1) !== text) states.push(text);
  }).observe(transcript, { childList: true, subtree: true, characterData: true });
})()`;

describe('web chat in Debian chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let network: ReturnType<typeof networkSwitch>;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    network = networkSwitch(t);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('sends a question, streams the reply in, queues while offline and keeps the history on reload', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
    });
    let deltaFrames = 0;
    page.on('websocket', (ws) => {
      ws.on('framereceived', (frame) => {
        if (String(frame.payload).includes('"type":"delta"')) deltaFrames += 1;
      });
    });

    await page.goto(`${t.url}/`);
    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('online');
    // Accessible names and roles: the box, the button, the live transcript, the status.
    const box = page.getByLabel('Message');
    await expect.poll(() => box.count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Send' }).count()).toBe(1);
    expect(await page.getByRole('log', { name: 'Conversation' }).count()).toBe(1);
    expect(await page.getByRole('status').textContent()).toContain('Connected');

    await page.evaluate(RECORD_REPLY_STATES);
    await box.fill('how many red shirts are in stock?');
    await box.press('Enter');
    const reply = page.locator('.message.assistant[data-done]').first();
    await reply.waitFor();
    const text = (await reply.locator('.text').textContent()) ?? '';
    expect(text).toMatch(/red shirt/i);
    expect(text).toMatch(/\d+ units in stock/i);
    expect(await reply.locator('.note').textContent()).toContain('inventory.lookupStock');
    expect(await box.inputValue()).toBe('');
    const states = await page.evaluate<string[]>('window.replyStates');
    expect(states.at(-1)).toBe(text);
    if (deltaFrames >= 2) {
      // Streaming: the bubble showed a shorter prefix of the reply before the whole of it.
      expect(states.length).toBeGreaterThanOrEqual(2);
      expect(states[0]!.length).toBeLessThan(text.length);
      expect(text.startsWith(states[0]!)).toBe(true);
    }

    // The connection drops; a message written meanwhile waits, then goes out on reconnect.
    network.down();
    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('offline');
    await box.fill('how many blue shirts are in stock?');
    await page.getByRole('button', { name: 'Send' }).click();
    const queued = page.locator('.message.user').nth(1);
    expect(await queued.getAttribute('data-state')).toBe('queued');
    expect(await queued.locator('.note').textContent()).toMatch(/queued/i);
    expect(await page.locator('#status-text').textContent()).toMatch(/1 message queued/);
    network.up();
    const second = page.locator('.message.assistant[data-done]').nth(1);
    await second.waitFor();
    expect(await second.locator('.text').textContent()).toMatch(/blue shirt/i);
    expect(await page.locator('#status').getAttribute('data-state')).toBe('online');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'webchat.png') });

    // A reload replays the conversation from the server, in order, once.
    await page.reload();
    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('online');
    await expect.poll(() => page.locator('.message').count()).toBe(4);
    const bubbles = await page.locator('.message .text').allTextContents();
    expect(bubbles[0]).toBe('how many red shirts are in stock?');
    expect(bubbles[1]).toBe(text);
    expect(bubbles[2]).toBe('how many blue shirts are in stock?');
    expect(bubbles[3]).toMatch(/blue shirt/i);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it('keeps a separate conversation for another browser, and the same one for the same browser', async () => {
    const other = await browser.newContext();
    const page = await other.newPage();
    await page.goto(`${t.url}/`);
    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('online');
    expect(await page.locator('.message').count()).toBe(0);
    expect(await page.locator('#empty').isVisible()).toBe(true);
    await page.getByLabel('Message').fill('hello');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.message.assistant[data-done]').waitFor();
    // A second tab of the same browser shares the session and sees the same history.
    const tab = await other.newPage();
    await tab.goto(`${t.url}/`);
    await expect.poll(() => tab.locator('.message').count()).toBe(2);
    expect(await tab.locator('.message.user .text').textContent()).toBe('hello');
    await other.close();
  });
});

describe('web chat in Debian chromium, with API keys configured', () => {
  let t: TestApp;
  let browser: Browser;
  const KEY = 'browser-test-key-1';

  beforeAll(async () => {
    t = await startTestApp({ gateway: { port: 0, host: '127.0.0.1', apiKeys: [KEY] } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('takes the key from ?key= once, and asks for one when it has none or a wrong one', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/?key=${KEY}`);
    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('online');
    expect(new URL(page.url()).search).toBe('');
    expect(await page.locator('#key-form').isHidden()).toBe(true);
    await context.close();

    const stranger = await browser.newContext();
    const other = await stranger.newPage();
    await other.goto(`${t.url}/`);
    await expect.poll(() => other.locator('#status').getAttribute('data-state')).toBe('needs-key');
    const keyBox = other.getByLabel('This web chat needs an API key');
    expect(await keyBox.isVisible()).toBe(true);
    await keyBox.fill('a-wrong-key');
    await keyBox.press('Enter');
    await expect.poll(() => other.locator('#key-form').isVisible()).toBe(true);
    expect(await other.locator('#status').getAttribute('data-state')).toBe('needs-key');
    await keyBox.fill(KEY);
    await keyBox.press('Enter');
    await expect.poll(() => other.locator('#status').getAttribute('data-state')).toBe('online');
    await other.getByLabel('Message').fill('how many red shirts are in stock?');
    await other.getByLabel('Message').press('Enter');
    await other.locator('.message.assistant[data-done]').waitFor();
    expect(await other.locator('.message.assistant .text').textContent()).toMatch(/red shirt/i);
    await stranger.close();
  });
});
