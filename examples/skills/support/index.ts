/**
 * The `support` example skill: answers from a bundled FAQ and opens tickets for the rest.
 * Tickets live in a store owned by each skill instance (never a module-level map), bounded.
 */
import { defineSkill, type Skill, z } from 'clawmesh/skill';
import { FAQ } from './faq.ts';

/** A support ticket. */
export interface Ticket {
  readonly id: string;
  readonly subject: string;
  readonly description?: string;
  readonly priority: 'low' | 'normal' | 'high';
  readonly status: 'open';
  readonly openedAt: string;
  readonly conversationId?: string;
  readonly userId?: string;
}

/** Where a support skill keeps its tickets. */
export interface TicketStore {
  /** Opens a ticket; the same `callId` (a retried tool call) gives back the same ticket. */
  open(fields: Omit<Ticket, 'id' | 'status' | 'openedAt'>, callId?: string): Ticket;
  get(id: string): Ticket | undefined;
  readonly size: number;
}

/** An in-memory ticket store that forgets the oldest tickets beyond `max` (1000). */
export function createTicketStore(options: { max?: number; firstNumber?: number } = {}): TicketStore {
  const { max = 1000 } = options;
  let next = options.firstNumber ?? 1001;
  const tickets = new Map<string, Ticket>();
  const byCall = new Map<string, string>();
  return {
    open(fields, callId) {
      const known = callId === undefined ? undefined : tickets.get(byCall.get(callId) ?? '');
      if (known) return known;
      const ticket: Ticket = {
        ...fields,
        id: `T-${next++}`,
        status: 'open',
        openedAt: new Date().toISOString(),
      };
      tickets.set(ticket.id, ticket);
      if (callId !== undefined) byCall.set(callId, ticket.id);
      while (tickets.size > max) tickets.delete(tickets.keys().next().value as string);
      while (byCall.size > max) byCall.delete(byCall.keys().next().value as string);
      return ticket;
    },
    get: (id) => tickets.get(id),
    get size() {
      return tickets.size;
    },
  };
}

const FILLER = new Set([
  ...'how do does i my me the a an to is can you'.split(' '),
  ...'what of for and in on it get want with have has not yet'.split(' '),
]);

function wordsOf(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .map((word) => (word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word))
    .filter((word) => word !== '' && !FILLER.has(word));
}

/** Same word, or one a prefix of the other (`arrive` / `arrived`) when both are long enough. */
const sameWord = (a: string, b: string): boolean =>
  a === b || (Math.min(a.length, b.length) >= 4 && (a.startsWith(b) || b.startsWith(a)));

const INDEX = FAQ.map((entry) => ({
  entry,
  words: [...new Set(wordsOf(`${entry.question} ${entry.keywords.join(' ')}`))],
}));

/** The FAQ entries ranked by how many of the query's words they share, best first. */
export function rankFaq(query: string, limit = 3) {
  const words = [...new Set(wordsOf(query))];
  return INDEX.map(({ entry, words: own }) => ({
    entry,
    score: words.filter((w) => own.some((o) => sameWord(w, o))).length,
  }))
    .filter((ranked) => ranked.score > 0)
    .sort((a, b) => b.score - a.score)
    .slice(0, limit);
}

/**
 * Creates a support skill with a ticket store of its own (a fresh one unless given).
 *
 * @example
 * const support = createSupportSkill({ tickets: createTicketStore({ max: 100 }) });
 */
export function createSupportSkill(options: { tickets?: TicketStore } = {}): Skill {
  const tickets = options.tickets ?? createTicketStore();
  return defineSkill({
    name: 'support',
    version: '1.0.0',
    description: 'Answers from the support FAQ and opens tickets',
    tools: {
      searchFaq: {
        description: 'Search the support FAQ for an answer',
        input: z.object({ query: z.string().min(1).describe("The question, in the customer's words") }),
        run: async ({ query }) => {
          const matches = rankFaq(query).map(({ entry, score }) => ({
            id: entry.id,
            question: entry.question,
            answer: entry.answer,
            score,
          }));
          const best = matches[0];
          const summary = best
            ? `${best.question} ${best.answer}`
            : `No FAQ entry matches "${query}"; a support ticket can be opened for it`;
          return { query, found: best !== undefined, matches, summary };
        },
      },
      openTicket: {
        description: 'Open a support ticket for a problem that the FAQ does not solve',
        input: z.object({
          subject: z.string().min(3),
          description: z.string().optional(),
          priority: z.enum(['low', 'normal', 'high']).default('normal'),
        }),
        run: async ({ subject, description, priority }, ctx) => {
          const fields = {
            subject,
            description,
            priority,
            conversationId: ctx.conversationId,
            userId: ctx.userId,
          };
          const ticket = tickets.open(fields, ctx.callId);
          ctx.logger.info({ ticketId: ticket.id, priority }, 'support ticket opened');
          const summary = `Opened ticket ${ticket.id}: ${subject} (priority ${priority})`;
          return { ticketId: ticket.id, status: ticket.status, priority, summary };
        },
      },
    },
  });
}

export default createSupportSkill();
