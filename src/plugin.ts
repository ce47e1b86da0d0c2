/**
 * The public entry for plugin authors: `clawmesh/plugin`.
 *
 * @example
 * import { definePlugin } from 'clawmesh/plugin';
 *
 * export default definePlugin({
 *   name: 'shout',
 *   onResponseGenerated: (context, response) => response.text.toUpperCase(),
 * });
 */
import type { ClawmeshPlugin } from './plugins/types.ts';

// Values

/**
 * Returns the plugin unchanged; it only gives the object its type, so hooks get typed
 * arguments and a misspelt hook name is an error.
 *
 * @example
 * export default definePlugin({
 *   name: 'moderation',
 *   priority: 10,
 *   onMessageReceived(context, message) {
 *     return message.text.includes('forbidden') ? null : message;
 *   },
 * });
 */
export function definePlugin<T extends ClawmeshPlugin>(plugin: T & NoUnknownHooks<T>): T {
  return plugin;
}

/**
 * `never` for each `on…` key of `T` that is no hook (`onMesageReceived`), so such a key is a
 * type error; other extra keys (state, helpers) stay allowed.
 */
type NoUnknownHooks<T> = {
  [K in Exclude<keyof T, keyof ClawmeshPlugin> as K extends `on${Capitalize<string>}` ? K : never]: never;
};

// Types

export type {
  ClawmeshPlugin,
  HookContext,
  HookResult,
  PluginError,
  PluginMessage,
  PluginModelCall,
  PluginResponse,
  PluginSkillCall,
  TransformHooks,
} from './plugins/types.ts';
