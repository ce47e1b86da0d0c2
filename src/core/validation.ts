import type { z } from 'zod';
import { ClawmeshError } from './errors.ts';

/** One line naming each failing field: `text: Invalid input: expected string, received number`. */
export function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parses a value or throws `INVALID_ARGUMENT` naming the fields; `what` prefixes the message. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => issue.path.map(String).join('.')).filter(Boolean);
  throw new ClawmeshError('INVALID_ARGUMENT', `${what}: ${formatZodError(result.error)}`, {
    details: { fields },
  });
}
