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
export function definePlugin<T extends ClawmeshPlugin>(plugin: T): T {
  return plugin;
}

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
