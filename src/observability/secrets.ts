/** Config keys whose values are credentials: `apiKey(s)`, `botToken`, `webhookSecret`, `secrets`, … */
const SECRET_KEY = /(^|[a-z])(key|keys|token|secret|secrets|password)$/i;
/** Config keys that match {@link SECRET_KEY} and hold no credential. */
const NOT_SECRET = new Set(['publicKey']);
/** Environment variables holding credentials: `OPENAI_API_KEY`, `CLAWMESH_API_KEYS`, `TELEGRAM_BOT_TOKEN`, … */
const SECRET_VARIABLE = /(^|_)(KEYS?|TOKEN|SECRET|PASSWORD)$/;

/**
 * Every credential a process knows, for the logger to scrub: values under credential-named keys
 * of the config (API keys, channel tokens and secrets, skill secrets), passwords inside its
 * URLs, and environment variables with `KEY`, `TOKEN`, `SECRET` or `PASSWORD` in their name
 * (`OPENAI_API_KEY`, a skill's `STORE_API_KEY`).
 */
export function secretValuesOf(config: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  const found = new Set<string>();
  const visit = (value: unknown, underSecret: boolean): void => {
    if (typeof value === 'string') {
      if (underSecret) found.add(value);
      const password = urlPassword(value);
      if (password) found.add(password);
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) visit(item, underSecret);
      return;
    }
    if (value && typeof value === 'object') {
      for (const [child, item] of Object.entries(value)) {
        // Skill secrets are a map of names to values: everything under `secrets` is one.
        visit(item, underSecret || (SECRET_KEY.test(child) && !NOT_SECRET.has(child)));
      }
    }
  };
  visit(config, false);
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    if (SECRET_VARIABLE.test(name)) {
      found.add(value);
      for (const part of value.split(',')) found.add(part.trim());
    }
    const password = urlPassword(value);
    if (password) found.add(password);
  }
  return [...found].filter((value) => value.trim() !== '');
}

function urlPassword(value: string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*:[^/]*@/i.test(value)) return undefined;
  try {
    const password = decodeURIComponent(new URL(value).password);
    return password || undefined;
  } catch {
    return undefined;
  }
}
