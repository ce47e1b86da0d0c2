import { runWithDeadline } from '../core/context.ts';
import type { Handlers } from '../core/contract.ts';
import type { ModelRequest, modelsContract, Usage } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import type { ModelProvider } from './types.ts';

/** What {@link ModelsServiceOptions.onCompleted} hears after each successful completion. */
export interface CompletionInfo {
  /** `provider/model` that answered. */
  model: string;
  usage: Usage;
  latencyMs: number;
  request: ModelRequest;
}

/** Options of {@link createModelsService}. */
export interface ModelsServiceOptions {
  /** The providers to route to, each by its unique name. */
  providers: ModelProvider[];
  /** `provider/model` or a bare provider, used when a request names no model. */
  defaultModel: string;
  /** Called after each successful completion, for metrics and cost; its errors are ignored. */
  onCompleted?: (info: CompletionInfo) => void;
}

/** A model name resolved to its provider and the provider's own model name. */
interface Route {
  provider: ModelProvider;
  model: string;
}

/**
 * The Model Gateway's handlers: routes each request by `provider/model` (or a bare provider, or
 * the default) to a provider, under the call's deadline, and reports the model that answered
 * and the latency. Retries, fallbacks and caching wrap this from outside.
 *
 * @example
 * const models = createModelsService({ providers: [createLocalProvider()], defaultModel: 'local' });
 * const reply = await models.complete({ messages: [{ role: 'user', content: 'hi' }] }, ctx);
 */
export function createModelsService(options: ModelsServiceOptions): Handlers<typeof modelsContract> {
  const providers = new Map<string, ModelProvider>();
  for (const provider of options.providers) {
    if (providers.has(provider.name)) {
      throw new ClawmeshError('INVALID_ARGUMENT', `two model providers are named ${provider.name}`);
    }
    providers.set(provider.name, provider);
  }

  const resolve = (name: string): Route => {
    const slash = name.indexOf('/');
    const providerName = slash < 0 ? name : name.slice(0, slash);
    const provider = providers.get(providerName);
    if (!provider) {
      const known = [...providers.keys()].join(', ') || 'none';
      throw new ClawmeshError('NOT_FOUND', `unknown model provider "${providerName}" (known: ${known})`, {
        details: { provider: providerName, known: [...providers.keys()] },
      });
    }
    const model = slash < 0 ? '' : name.slice(slash + 1);
    return { provider, model: model || provider.defaultModel };
  };

  try {
    resolve(options.defaultModel);
  } catch (err) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `defaultModel "${options.defaultModel}": ${(err as Error).message}`,
    );
  }

  return {
    async complete(request, ctx) {
      const { provider, model } = resolve(request.model ?? options.defaultModel);
      const qualified = `${provider.name}/${model}`;
      const started = performance.now();
      const response = await runWithDeadline(ctx, `model ${qualified}`, (signal) =>
        provider.complete({ ...request, model }, ctx, signal),
      ).catch((err: unknown) => {
        throw asGatewayError(ClawmeshError.from(err), qualified);
      });
      const latencyMs = performance.now() - started;
      if (options.onCompleted) {
        try {
          options.onCompleted({ model: qualified, usage: response.usage, latencyMs, request });
        } catch {
          // An observer must never fail the completion it observes.
        }
      }
      return { ...response, model: qualified, latencyMs };
    },

    async list() {
      const models = [...providers.values()].map((p) => `${p.name}/${p.defaultModel}`);
      return { default: options.defaultModel, models };
    },
  };
}

/**
 * A provider's refusal as the caller should see it. The caller's request was fine; the
 * gateway's own credentials or request to the provider were not, so an upstream 401, 403 or
 * 4xx is `UNAVAILABLE` here, never the caller's `UNAUTHENTICATED`. A 429 stays `RATE_LIMITED`
 * with its delay in whole seconds.
 */
function asGatewayError(error: ClawmeshError, model: string): ClawmeshError {
  switch (error.code) {
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
    case 'INVALID_ARGUMENT':
    case 'NOT_FOUND':
      return new ClawmeshError('UNAVAILABLE', `model ${model} refused the request: ${error.message}`, {
        cause: error,
        retryable: false,
        details: { upstreamCode: error.code },
      });
    case 'RATE_LIMITED': {
      const retryAfterMs = error.details?.retryAfterMs;
      const retryAfterSeconds =
        typeof retryAfterMs === 'number' ? Math.max(1, Math.ceil(retryAfterMs / 1000)) : 1;
      return new ClawmeshError('RATE_LIMITED', `model ${model} is rate limited: ${error.message}`, {
        cause: error,
        details: { ...error.details, retryAfterSeconds },
      });
    }
    default:
      return error;
  }
}
