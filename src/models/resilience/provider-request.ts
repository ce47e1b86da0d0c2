import type { ProviderRequest } from '../types.ts';
import type { ChainRequest } from './types.ts';

/** The fields {@link providerRequestOf} copies: every field of a {@link ChainRequest}. */
type Copied =
  | 'messages'
  | 'tools'
  | 'temperature'
  | 'maxTokens'
  | 'topP'
  | 'seed'
  | 'frequencyPenalty'
  | 'presencePenalty'
  | 'toolChoice'
  | 'parallelToolCalls'
  | 'stop'
  | 'responseFormat'
  | 'reasoningEffort'
  | 'verbosity'
  | 'logitBias'
  | 'user'
  | 'safetyIdentifier';

// Fails to compile when a request gains a field that providerRequestOf does not copy.
const copiesEveryField: [Exclude<keyof ChainRequest, Copied>] extends [never] ? true : never = true;
void copiesEveryField;

/**
 * The request one attempt hands its provider: the chain's request (its set fields, any `model`
 * it carries left out) with the deployment's model. Field by field, as the request's own fields
 * are set: `Object.assign({}, request, { model })` costs four times as much, and a spread into a
 * literal forty, on every attempt. A caller may pass a whole `ModelRequest`: its model is the
 * gateway's name for the target, never the provider's.
 */
export function providerRequestOf(request: ChainRequest, model: string): ProviderRequest {
  const out: ProviderRequest = { messages: request.messages, model };
  if (request.tools !== undefined) out.tools = request.tools;
  if (request.temperature !== undefined) out.temperature = request.temperature;
  if (request.maxTokens !== undefined) out.maxTokens = request.maxTokens;
  if (request.topP !== undefined) out.topP = request.topP;
  if (request.seed !== undefined) out.seed = request.seed;
  if (request.frequencyPenalty !== undefined) out.frequencyPenalty = request.frequencyPenalty;
  if (request.presencePenalty !== undefined) out.presencePenalty = request.presencePenalty;
  if (request.toolChoice !== undefined) out.toolChoice = request.toolChoice;
  if (request.parallelToolCalls !== undefined) out.parallelToolCalls = request.parallelToolCalls;
  if (request.stop !== undefined) out.stop = request.stop;
  if (request.responseFormat !== undefined) out.responseFormat = request.responseFormat;
  if (request.reasoningEffort !== undefined) out.reasoningEffort = request.reasoningEffort;
  if (request.verbosity !== undefined) out.verbosity = request.verbosity;
  if (request.logitBias !== undefined) out.logitBias = request.logitBias;
  if (request.user !== undefined) out.user = request.user;
  if (request.safetyIdentifier !== undefined) out.safetyIdentifier = request.safetyIdentifier;
  return out;
}
