import { resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { channelStatuses } from '../gateway/channels/index.ts';
import { silentLogger } from '../observability/logger.ts';
import { loadPlugins } from '../plugins/loader.ts';
import { checkAgents } from '../runtime/check-agents.ts';
import { BUILTIN_SKILLS } from '../runtime/services.ts';
import { loadSkills } from '../skills/loader.ts';
import { createStores } from '../store/index.ts';

type Check = { name: string; run: () => Promise<string> };

/**
 * `clawmesh doctor`: validates the config, then checks each dependency it names (store,
 * skills, plugins, model). Prints one line per check; exits 1 when any fails.
 */
export async function runDoctor(options: { configFile?: string | undefined }): Promise<number> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(options.configFile ? { file: options.configFile } : {});
  } catch (err) {
    process.stdout.write(`✗ config: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const { config, baseDir, file } = loaded;
  process.stdout.write(`✓ config: ${file ?? 'no config file, defaults and environment'}\n`);
  const checks: Check[] = [
    {
      name: 'store',
      run: async () => {
        const path = resolve(baseDir, config.store.path);
        const stores = createStores({ kind: config.store.kind, path });
        try {
          await stores.conversations.ping();
        } finally {
          await stores.close();
        }
        return config.store.kind === 'sqlite' ? `sqlite at ${path}` : config.store.kind;
      },
    },
    {
      name: 'skills',
      run: async () => {
        const skills = await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS });
        return skills.map((skill) => `${skill.name}@${skill.version}`).join(', ') || 'none';
      },
    },
    {
      name: 'plugins',
      run: async () => {
        const plugins = await loadPlugins(config.plugins, { baseDir, logger: silentLogger() });
        return plugins.map((plugin) => plugin.name).join(', ') || 'none';
      },
    },
    {
      name: 'agents',
      run: async () => {
        const skills = await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS });
        const providers = ['local', ...(config.models.openai.apiKey ? ['openai'] : [])];
        checkAgents(
          config,
          skills.map((skill) => skill.name),
          providers,
        );
        const model = config.models.default ?? 'local';
        const note = model === 'local' ? ' (built-in; set OPENAI_API_KEY for a real model)' : '';
        return `${config.agents.map((agent) => agent.id).join(', ')}; default model ${model}${note}`;
      },
    },
  ];
  let failed = 0;
  for (const check of checks) {
    try {
      process.stdout.write(`✓ ${check.name}: ${await check.run()}\n`);
    } catch (err) {
      failed += 1;
      process.stdout.write(`✗ ${check.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  for (const channel of channelStatuses(config.channels)) {
    const how = channel.on ? 'on' : `off (set ${channel.missing.join(', ')})`;
    process.stdout.write(`${channel.on ? '✓' : '-'} channel ${channel.name}: ${how}\n`);
  }
  process.stdout.write(failed === 0 ? 'all checks passed\n' : `${failed} check(s) failed\n`);
  return failed === 0 ? 0 : 1;
}
