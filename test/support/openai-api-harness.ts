import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startTestApp, type TestApp } from './app.ts';
import { type FakeAnthropic, startFakeAnthropic } from './fake-anthropic.ts';
import { type FakeOpenAI, startFakeOpenAI } from './fake-openai.ts';

/**
 * A Clawmesh test app whose models are a fake OpenAI upstream (`gpt-test`) and a fake Anthropic
 * one (`claude-test`), called through its OpenAI-compatible API with the official `openai` client.
 * Its fields are set once the suite's `beforeAll` has run.
 */
export interface OpenAIApiHarness {
  openai: FakeOpenAI;
  anthropic: FakeAnthropic;
  app: TestApp;
  client: OpenAI;
  /** The body of the latest request the fake OpenAI upstream received. */
  lastOpenAI<T = Record<string, unknown>>(): T;
  /** The body of the latest request the fake Anthropic upstream received. */
  lastAnthropic<T = Record<string, unknown>>(): T;
}

/**
 * Registers the hooks of such a suite in the calling `describe`: the fakes and the app start
 * before its tests (with `config` as the config's overrides and `env` beside the upstreams'
 * variables), the fakes forget their requests before each test, and everything stops after.
 */
export function useOpenAIApiHarness(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
): OpenAIApiHarness {
  const harness = {
    lastOpenAI: () => harness.openai.requests.at(-1)!.body,
    lastAnthropic: () => harness.anthropic.requests.at(-1)!.body,
  } as OpenAIApiHarness;
  beforeAll(async () => {
    [harness.openai, harness.anthropic] = await Promise.all([startFakeOpenAI(), startFakeAnthropic()]);
    harness.app = await startTestApp(
      config,
      {},
      {
        OPENAI_API_KEY: 'sk-upstream-1',
        OPENAI_BASE_URL: harness.openai.url,
        OPENAI_MODEL: 'gpt-test',
        ANTHROPIC_API_KEY: 'ak-upstream-1',
        ANTHROPIC_BASE_URL: harness.anthropic.url,
        ANTHROPIC_MODEL: 'claude-test',
        ...env,
      },
    );
    harness.client = new OpenAI({ apiKey: 'unused', baseURL: `${harness.app.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await harness.app?.stop();
    await Promise.all([harness.openai?.close(), harness.anthropic?.close()]);
  });
  beforeEach(() => {
    harness.openai.reset();
    harness.anthropic.reset();
  });
  return harness;
}
