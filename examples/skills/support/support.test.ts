import { describe, expect, it } from 'vitest';
import { createCallContext } from '../../../src/core/context.ts';
import { createSkillHost } from '../../../src/skills/host.ts';
import support, { createSupportSkill, createTicketStore, rankFaq } from './index.ts';

const invoke = (host: ReturnType<typeof createSkillHost>, tool: string, args: unknown, callId?: string) =>
  host.handlers.invoke(
    { skill: 'support', tool, arguments: args, callId },
    createCallContext({ conversationId: 'c1', userId: 'u1' }),
  );

describe('support skill', () => {
  const host = createSkillHost({ skills: [support] });

  it('declares its tools as the design says', () => {
    expect(support.name).toBe('support');
    expect(support.tools.searchFaq?.description).toBe('Search the support FAQ for an answer');
    expect(support.tools.openTicket?.description).toBe(
      'Open a support ticket for a problem that the FAQ does not solve',
    );
  });

  it.each([
    ['How do I get my money back?', 'refunds'],
    ['how long does delivery take', 'shipping-time'],
    ['I forgot my password', 'password-reset'],
    ['where is my parcel? I want to track it', 'order-tracking'],
    ['Do you ship to the UK?', 'international-shipping'],
  ])('ranks the right FAQ entry first for %j', (query, id) => {
    expect(rankFaq(query)[0]?.entry.id).toBe(id);
  });

  it('answers with the best matches and a summary', async () => {
    const { result } = await invoke(host, 'searchFaq', { query: 'refund please' });
    const found = result as { found: boolean; matches: { id: string }[]; summary: string };
    expect(found.found).toBe(true);
    expect(found.matches[0]?.id).toBe('refunds');
    expect(found.matches.length).toBeLessThanOrEqual(3);
    expect(found.summary).toContain('30 days');
  });

  it('says so when nothing matches', async () => {
    const { result } = await invoke(host, 'searchFaq', { query: 'zebra' });
    expect(result).toMatchObject({ found: false, matches: [] });
    expect((result as { summary: string }).summary).toContain('No FAQ entry matches "zebra"');
  });

  it('opens tickets with normal priority by default', async () => {
    const tickets = createTicketStore();
    const own = createSkillHost({ skills: [createSupportSkill({ tickets })] });
    const { result } = await invoke(own, 'openTicket', { subject: 'Parcel arrived damaged' });
    expect(result).toEqual({
      ticketId: 'T-1001',
      status: 'open',
      priority: 'normal',
      summary: 'Opened ticket T-1001: Parcel arrived damaged (priority normal)',
    });
    expect(tickets.get('T-1001')).toMatchObject({ conversationId: 'c1', userId: 'u1', priority: 'normal' });
  });

  it('keeps tickets per skill instance', async () => {
    const a = createSkillHost({ skills: [createSupportSkill()] });
    const b = createSkillHost({ skills: [createSupportSkill()] });
    await invoke(a, 'openTicket', { subject: 'first' });
    expect((await invoke(a, 'openTicket', { subject: 'second' })).result).toMatchObject({
      ticketId: 'T-1002',
    });
    expect((await invoke(b, 'openTicket', { subject: 'other' })).result).toMatchObject({
      ticketId: 'T-1001',
    });
  });

  it('gives back the same ticket for a retried call', async () => {
    const own = createSkillHost({ skills: [createSupportSkill()] });
    const first = await invoke(own, 'openTicket', { subject: 'Broken zip', priority: 'high' }, 'call-1');
    const retry = await invoke(own, 'openTicket', { subject: 'Broken zip', priority: 'high' }, 'call-1');
    expect((retry.result as { ticketId: string }).ticketId).toBe(
      (first.result as { ticketId: string }).ticketId,
    );
  });

  it('forgets the oldest tickets beyond its bound', () => {
    const tickets = createTicketStore({ max: 2 });
    for (const subject of ['one', 'two', 'three']) tickets.open({ subject, priority: 'low' });
    expect(tickets.size).toBe(2);
    expect(tickets.get('T-1001')).toBeUndefined();
    expect(tickets.get('T-1003')?.subject).toBe('three');
  });

  it('refuses a too short subject or an unknown priority', async () => {
    expect((await invoke(host, 'openTicket', { subject: 'x' })).error?.message).toMatch(/^subject: /);
    expect((await invoke(host, 'openTicket', { subject: 'xyz', priority: 'urgent' })).error?.message).toMatch(
      /^priority: /,
    );
  });
});
