import { basename, extname } from 'node:path';
import type { Config } from '../config/schema.ts';

/**
 * The skills a conversation role may call when it hosts none itself: those its agents name,
 * else the names of `skills.load` (a built-in name as written, a path by its file or folder name).
 */
export function skillNamesOf(config: Config): string[] {
  const named = config.agents.flatMap((agent) => agent.skills ?? []);
  if (named.length > 0) return [...new Set(named)];
  return [
    ...new Set(
      config.skills.load.map((specifier) => {
        const base = basename(specifier.replace(/[/\\]+$/, ''));
        const name = base.replace(extname(base), '');
        return name === 'index' ? basename(specifier.replace(/[/\\]index\.[cm]?[jt]s$/, '')) : name;
      }),
    ),
  ];
}
