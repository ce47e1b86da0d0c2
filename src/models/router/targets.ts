import { trimOldest } from '../../core/bounded.ts';
import { ClawmeshError } from '../../core/errors.ts';
import {
  type ChainHooks,
  type ChainOptions,
  createDeploymentChain,
  createDeploymentPool,
  type DeploymentChain,
  type DeploymentState,
} from '../resilience/chain.ts';
import type { Deployment, ModelProvider } from '../types.ts';

/** Options of {@link createTargets}. */
export interface TargetsOptions {
  /** Providers by name: `provider/model` and a bare provider resolve through them. */
  providers: readonly ModelProvider[];
  /** Named deployments (ids without `/`). */
  deployments?: readonly Deployment[];
  /** Tiers: ordered lists of `provider/model`, bare providers or deployment ids. */
  tiers?: Readonly<Record<string, readonly string[]>>;
  /** Targets to prepare at start (the default model), so a typo fails the start; checked before the tiers, errors unprefixed. */
  prepare?: readonly string[];
  chain?: ChainOptions;
  hooks?: ChainHooks;
}

/** A name resolved to the chain that serves it. */
export interface ResolvedTarget {
  chain: DeploymentChain;
  /** The tier, when the name is one. */
  tier?: string;
}

/** Every name a request may use, resolved to deployment chains that share breaker state. */
export interface Targets {
  /** The chain of a tier, deployment id, `provider/model` or bare provider; `NOT_FOUND` otherwise. */
  resolve(name: string): ResolvedTarget;
  /** The chain of a name, as {@link Targets.resolve} finds it, without the wrapper object (the hot path). */
  chainOf(name: string): DeploymentChain;
  /** Tier names and their deployments' `provider/model`, in order. */
  tiers(): { name: string; models: string[] }[];
  /** The `provider/model` of every prepared deployment (named ones by id), without repeats. */
  models(): string[];
  /** Names a config may use as the first part of a model name: providers, deployment ids, tiers. */
  names(): string[];
  /** State of every deployment, for metrics. */
  state(): DeploymentState[];
}

/** Chains for names nobody prepared (`openai/some-model` asked for once), kept up to this many. */
const MAX_AD_HOC = 256;

const qualified = (deployment: Deployment) => `${deployment.provider.name}/${deployment.model}`;

/**
 * Resolves target names to deployment chains. Named deployments, every tier entry and the
 * prepared targets share one pool, so a deployment's circuit and rate-limit window are the same
 * whichever tier reaches it; a `provider/model` nobody prepared gets a chain of its own on first
 * use (bounded). Tier entries are checked at creation: an unknown one throws `INVALID_ARGUMENT`.
 */
export function createTargets(options: TargetsOptions): Targets {
  const providers = new Map<string, ModelProvider>();
  for (const provider of options.providers) {
    if (providers.has(provider.name)) {
      throw new ClawmeshError('INVALID_ARGUMENT', `two model providers are named ${provider.name}`);
    }
    providers.set(provider.name, provider);
  }
  const named = new Map<string, Deployment>();
  for (const deployment of options.deployments ?? []) {
    if (deployment.id.includes('/')) {
      throw new ClawmeshError('INVALID_ARGUMENT', `deployment id "${deployment.id}" may not contain "/"`);
    }
    if (named.has(deployment.id)) {
      throw new ClawmeshError('INVALID_ARGUMENT', `two deployments are named ${deployment.id}`);
    }
    named.set(deployment.id, deployment);
  }
  const tierEntries = new Map(Object.entries(options.tiers ?? {}));

  const unknownProvider = (name: string) => {
    const known = [...providers.keys()];
    return new ClawmeshError(
      'NOT_FOUND',
      `unknown model provider "${name}" (known: ${known.join(', ') || 'none'})`,
      { details: { provider: name, known } },
    );
  };

  /** A deployment for a name that is not a tier: a named one or `provider/model`; undefined when neither. */
  const deploymentFor = (name: string): Deployment | undefined => {
    const byId = named.get(name);
    if (byId) return byId;
    const slash = name.indexOf('/');
    const providerName = slash < 0 ? name : name.slice(0, slash);
    const provider = providers.get(providerName);
    if (!provider) {
      if (slash < 0) return undefined;
      throw unknownProvider(providerName);
    }
    const model = (slash < 0 ? '' : name.slice(slash + 1)) || provider.defaultModel;
    return { id: `${provider.name}/${model}`, provider, model };
  };

  const unknownName = (name: string) => {
    const lists = [
      `tiers: ${[...tierEntries.keys()].join(', ') || 'none'}`,
      `deployments: ${[...named.keys()].join(', ') || 'none'}`,
      `providers: ${[...providers.keys()].join(', ') || 'none'}`,
    ];
    return new ClawmeshError(
      'NOT_FOUND',
      `unknown model "${name}": not a tier, deployment or provider (${lists.join('; ')})`,
      { details: { model: name, tiers: [...tierEntries.keys()], providers: [...providers.keys()] } },
    );
  };

  // Every deployment the config reaches goes into one pool.
  const pooled = new Map<string, Deployment>(named);
  const addToPool = (name: string, where: string | undefined) => {
    const prefix = where ? `${where}: ` : '';
    let deployment: Deployment | undefined;
    try {
      deployment = deploymentFor(name);
    } catch (err) {
      throw new ClawmeshError('INVALID_ARGUMENT', `${prefix}${(err as Error).message}`, {
        cause: err,
        details: { where: where ?? 'prepare', name },
      });
    }
    if (!deployment && where && tierEntries.has(name)) {
      // Tiers list models and deployments; one tier in another would be a chain of chains.
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `${prefix}"${name}" is a tier: a tier lists provider/model names and deployment ids, not tiers`,
        { details: { where, name } },
      );
    }
    if (!deployment) {
      throw new ClawmeshError('INVALID_ARGUMENT', `${prefix}${unknownName(name).message}`, {
        details: { where: where ?? 'prepare', name },
      });
    }
    pooled.set(deployment.id, deployment);
    return deployment.id;
  };
  for (const provider of providers.values()) addToPool(provider.name, `provider ${provider.name}`);
  // Prepared names first: a bad default model is named as such, not as the tiers derived from it.
  for (const name of options.prepare ?? []) {
    if (!tierEntries.has(name)) addToPool(name, undefined);
  }
  const tierIds = new Map<string, string[]>();
  for (const [tier, entries] of tierEntries) {
    tierIds.set(
      tier,
      entries.map((entry, index) => addToPool(entry, `models.tiers.${tier}.${index}`)),
    );
  }
  const pool = createDeploymentPool([...pooled.values()], options.chain, options.hooks);

  const tierChains = new Map<string, DeploymentChain>();
  for (const [tier, ids] of tierIds) tierChains.set(tier, pool.chain(ids));
  const single = new Map<string, DeploymentChain>();
  const adHoc = new Map<string, DeploymentChain>();

  const chainOf = (name: string): DeploymentChain => {
    const known = tierChains.get(name) ?? single.get(name) ?? adHoc.get(name);
    if (known) return known;
    const deployment = deploymentFor(name);
    if (!deployment) throw unknownName(name);
    if (pooled.has(deployment.id)) {
      const chain = pool.chain([deployment.id]);
      single.set(name, chain);
      return chain;
    }
    const chain = createDeploymentChain([deployment], options.chain, options.hooks);
    adHoc.set(name, chain);
    trimOldest(adHoc, MAX_AD_HOC);
    return chain;
  };

  return {
    chainOf,
    resolve(name) {
      const chain = chainOf(name);
      return tierChains.has(name) ? { chain, tier: name } : { chain };
    },
    tiers: () => [...tierChains].map(([name, chain]) => ({ name, models: chain.deployments.map(qualified) })),
    models: () => [...new Set([...pooled.values()].map((d) => (named.has(d.id) ? d.id : qualified(d))))],
    names: () => [...new Set([...providers.keys(), ...named.keys(), ...tierEntries.keys()])],
    state: () => [...pool.state(), ...[...adHoc.values()].flatMap((chain) => chain.state())],
  };
}
