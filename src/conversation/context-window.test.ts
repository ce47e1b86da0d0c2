import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../core/messages.ts';
import { buildContextWindow, estimateTokens } from './context-window.ts';

const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

function turns(count: number, size: number): ChatMessage[] {
  const history: ChatMessage[] = [];
  for (let i = 1; i <= count; i += 1) {
    history.push(user(`q${i} ${'x'.repeat(size)}`));
    history.push({
      role: 'assistant',
      content: '',
      toolCalls: [{ id: `c${i}`, name: 's__t', arguments: '{}' }],
    });
    history.push({ role: 'tool', content: `result ${i}`, toolCallId: `c${i}`, name: 's__t' });
    history.push(assistant(`a${i}`));
  }
  return history;
}

describe('buildContextWindow', () => {
  it('keeps everything when it fits, in order, between the system prompt and the new message', () => {
    const history = turns(3, 10);
    const window = buildContextWindow({
      systemPrompt: 'sys',
      history,
      message: user('new'),
      budgetTokens: 10_000,
    });
    expect(window[0]).toEqual({ role: 'system', content: 'sys' });
    expect(window.slice(1, -1)).toEqual(history);
    expect(window.at(-1)).toEqual(user('new'));
  });

  it('drops the oldest whole turns first and never splits a turn', () => {
    const history = turns(10, 400);
    const window = buildContextWindow({
      systemPrompt: 'sys',
      history,
      message: user('new'),
      budgetTokens: 600,
    });
    const kept = window.slice(1, -1);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length % 4).toBe(0);
    expect(kept[0]?.role).toBe('user');
    expect(kept.at(-1)).toEqual(assistant('a10'));
    const total = window.reduce((sum, m) => sum + estimateTokens(m), 0);
    expect(total).toBeLessThanOrEqual(600);
  });

  it('always keeps the system prompt and the newest message, even over budget', () => {
    const window = buildContextWindow({
      systemPrompt: 's'.repeat(4000),
      history: turns(2, 10),
      message: user('m'.repeat(4000)),
      budgetTokens: 100,
    });
    expect(window.map((m) => m.role)).toEqual(['system', 'user']);
  });

  it('counts the reserved tokens against the budget', () => {
    const history = turns(4, 40);
    const roomy = buildContextWindow({ systemPrompt: 's', history, message: user('n'), budgetTokens: 400 });
    const tight = buildContextWindow({
      systemPrompt: 's',
      history,
      message: user('n'),
      budgetTokens: 400,
      reservedTokens: 300,
    });
    expect(tight.length).toBeLessThan(roomy.length);
  });
});
