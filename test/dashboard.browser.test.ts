import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusEvent } from '../src/bus/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { launchChromium } from './support/browser.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const KEY = 'dashboard-browser-key-1';

describe('dashboard in Debian chromium, with API keys configured', () => {
  let t: TestApp;
  let browser: Browser;
  let stockConversation: string;
  let modelCalls = 0;
  const ask = async (userId: string, text: string) => {
    const reply = await t.post('/v1/messages', { userId, text }, { authorization: `Bearer ${KEY}` });
    expect(reply.status).toBe(200);
    return reply.body.conversationId as string;
  };

  beforeAll(async () => {
    t = await startTestApp({ gateway: { port: 0, host: '127.0.0.1', apiKeys: [KEY] } });
    await t.app.services.bus.subscribe('model.completed', 'test-probe', (event: BusEvent) => {
      if ((event.data as { model: string }).model === 'local/default') modelCalls++;
    });
    stockConversation = await ask('ana', 'how many red shirts are in stock?');
    await ask('ben', 'hello there');
    await t.app.services.bus.drain();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('asks for the key, then shows services, conversations with tool calls, the audit tail and usage', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    const foreignRequests: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
    });
    page.on('request', (request) => {
      if (!request.url().startsWith(t.url) && !request.url().startsWith('data:'))
        foreignRequests.push(request.url());
    });

    // No key yet: the page asks for one and shows no data.
    await page.goto(`${t.url}/dashboard`);
    const keyForm = page.locator('#key-form');
    await keyForm.waitFor({ state: 'visible' });
    expect(await page.locator('#main').isHidden()).toBe(true);
    expect(await page.locator('#status').getAttribute('data-state')).toBe('locked');

    // A wrong key is refused and the form says so.
    await page.getByLabel('API key').fill('not-the-right-key');
    await page.getByRole('button', { name: 'Show the dashboard' }).click();
    await expect.poll(() => page.locator('#key-reason').textContent()).toMatch(/refused.*invalid API key/);
    expect(await keyForm.isVisible()).toBe(true);

    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Show the dashboard' }).click();
    await page.locator('#main').waitFor({ state: 'visible' });
    expect(await keyForm.isHidden()).toBe(true);
    expect(await page.evaluate<string | null>("sessionStorage.getItem('clawmesh.dashboard.key')")).toBe(KEY);

    // Landmarks and named sections.
    expect(await page.getByRole('banner').count()).toBe(1);
    expect(await page.getByRole('main').count()).toBe(1);
    for (const name of ['Services', 'Model usage', 'Recent conversations', 'Conversation', 'Audit log']) {
      expect(await page.getByRole('region', { name, exact: true }).count(), name).toBe(1);
    }

    // Services: this process, ready, with its checks.
    const services = page.getByRole('region', { name: 'Services' });
    await expect.poll(() => services.getByText('ready', { exact: true }).count()).toBeGreaterThan(0);
    const checks = services.getByRole('table', { name: 'Readiness checks of this process' });
    const checkNames = await checks.locator('tbody th').allTextContents();
    expect(checkNames).toEqual(t.app.services.checks.map((c) => c.name));
    expect(await checks.locator('tbody .badge.ok').count()).toBe(checkNames.length);
    expect(await services.locator('dd').allTextContents()).toContain('gateway, conversation, skills, models');

    // Usage: the local model, with as many requests as model.completed events.
    const usage = page.getByRole('region', { name: 'Model usage' });
    const usageRow = usage.locator('tbody tr', { has: page.locator('th', { hasText: 'local/default' }) });
    await usageRow.waitFor();
    expect(await usageRow.locator('td').first().textContent()).toBe(String(modelCalls));
    expect(await usage.locator('thead th').allTextContents()).toEqual([
      'Model',
      'Requests',
      'Cached',
      'Fallbacks',
      'Tokens in',
      'Tokens out',
      'Cost',
      'Avg latency',
    ]);

    // Audit tail: the events of both turns, newest first.
    const audit = page.getByRole('region', { name: 'Audit log' });
    await expect.poll(() => audit.locator('tbody tr').count()).toBeGreaterThanOrEqual(8);
    const eventTypes = await audit.locator('tbody td:nth-child(2)').allTextContents();
    expect(eventTypes[0]).toBe('response.generated');
    expect(eventTypes).toContain('skill.invoked');
    expect(await audit.getByText('inventory.lookupStock ok', { exact: false }).count()).toBeGreaterThan(0);

    // Conversations: both, newest first; open the stock one and see its tool call.
    const conversations = page.getByRole('region', { name: 'Recent conversations' });
    await expect.poll(() => conversations.locator('tbody tr').count()).toBe(2);
    expect(await conversations.locator('tbody tr').nth(1).locator('td').nth(2).textContent()).toBe('ana');
    await conversations.getByRole('button', { name: stockConversation, exact: true }).click();
    const detail = page.getByRole('region', { name: 'Conversation', exact: true });
    const toolCall = detail.locator('tr.tool-call');
    await toolCall.waitFor();
    expect(await toolCall.locator('th').textContent()).toBe('inventory.lookupStock');
    expect(await toolCall.locator('td').nth(0).textContent()).toContain('"item": "red shirts"');
    expect(await toolCall.locator('td').nth(1).textContent()).toContain('"units": 42');
    expect(await toolCall.locator('td').nth(2).textContent()).toBe('ok');
    expect(await detail.locator('.said.user').textContent()).toBe('User: how many red shirts are in stock?');
    expect(await detail.locator('.said.reply').textContent()).toBe('Reply: red shirt: 42 units in stock');
    expect(new URL(page.url()).hash).toBe(`#conversation=${stockConversation}`);
    expect(
      await conversations.getByRole('button', { name: stockConversation }).getAttribute('aria-current'),
    ).toBe('true');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // It refreshes by itself: a new conversation shows up without a reload.
    const newest = await ask('cy', 'how many blue shirts are in stock?');
    await expect
      .poll(() => conversations.locator('tbody tr').first().getByRole('button').textContent(), {
        timeout: 12_000,
      })
      .toBe(newest);

    // The key stays for the tab: a reload shows the data at once, the open conversation too.
    await page.reload();
    await page.locator('#main').waitFor({ state: 'visible' });
    await detail.locator('tr.tool-call').waitFor();
    expect(await keyForm.isHidden()).toBe(true);

    // Forgetting the key locks the page again.
    await page.getByRole('button', { name: 'Forget key' }).click();
    await keyForm.waitFor({ state: 'visible' });
    expect(await page.evaluate<string | null>("sessionStorage.getItem('clawmesh.dashboard.key')")).toBeNull();

    expect(pageErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
    await context.close();
  });

  it('survives a mangled #conversation= address, and follows a link to another conversation in the same tab', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await page.goto(`${t.url}/dashboard#conversation=%E0%A4%A`);
    // The script ran: it asks for the key (a script that threw would leave 'Loading…').
    await page.locator('#key-form').waitFor({ state: 'visible', timeout: 5000 });
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Show the dashboard' }).click();
    await page.locator('#main').waitFor({ state: 'visible' });
    const detail = page.getByRole('region', { name: 'Conversation', exact: true });
    await expect.poll(() => detail.textContent()).toContain('Choose a conversation');

    // Pasting a link to a conversation into the address bar of this tab opens it.
    await page.evaluate(`location.hash = 'conversation=${stockConversation}'`);
    await detail.locator('tr.tool-call').waitFor();
    expect(await detail.locator('tr.tool-call th').textContent()).toBe('inventory.lookupStock');
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
