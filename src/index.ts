/**
 * Clawmesh: an AI-agent platform for messaging channels. Start as one process, grow into
 * services, without a rewrite.
 *
 * @example
 * import { createClawmesh } from 'clawmesh';
 * const app = await createClawmesh();
 * await app.listen();
 *
 * @module
 */

export type { EventTopics, Topic } from './bus/events.ts';
export { createEvent } from './bus/events.ts';
export type { BusKind, CreateBusOptions, ManagedBus } from './bus/index.ts';
export { createBus } from './bus/index.ts';
// Events
export { createMemoryBus } from './bus/memory.ts';
export type { Bus, BusEvent, EventHandler, Subscription } from './bus/types.ts';
export type { LoadConfigOptions, LoadedConfig } from './config/load.ts';
export { DEFAULT_CONFIG_FILE, loadConfig } from './config/load.ts';
export type { AgentConfig, Config, ConfigInput } from './config/schema.ts';
export { ConfigSchema } from './config/schema.ts';
export type { CallContext } from './core/context.ts';
export { childContext, createCallContext, remainingMs, withTimeout } from './core/context.ts';
export type { CallMiddleware, Client, Contract, Handlers, MethodSpec } from './core/contract.ts';
// Contracts, context and errors
export { clientFromInvoke, defineContract } from './core/contract.ts';
export type { InboundMessage, ToolCallReport, TurnReply } from './core/contracts/conversation.ts';
export { conversationContract } from './core/contracts/conversation.ts';
export { gatewayContract } from './core/contracts/gateway.ts';
export type { ModelRequest, ModelResponse } from './core/contracts/models.ts';
export { modelsContract } from './core/contracts/models.ts';
export { skillsContract } from './core/contracts/skills.ts';
export type { ClawmeshErrorJSON, ErrorCode } from './core/errors.ts';
export { ClawmeshError, ERROR_CODES, isErrorCode } from './core/errors.ts';
export type { ChatMessage, ToolCall, ToolSpec } from './core/messages.ts';
export type { ModelProvider } from './models/types.ts';
export type { Clawmesh, ClawmeshOptions } from './runtime/clawmesh.ts';
// Running Clawmesh
export { createClawmesh } from './runtime/clawmesh.ts';
export type { LeaseHandle, StoreOptions, Stores, TurnLease } from './store/index.ts';
// State
export { createStores, createTurnLease } from './store/index.ts';
export type { ConversationRecord, ConversationStore, DedupeStore, StoredMessage } from './store/types.ts';
export type { HttpTransport, NatsTransport, ServiceInstance, TransportOptions } from './transport/index.ts';
// Transports
export {
  createHttpTransport,
  createNatsTransport,
  createTransport,
  listServices,
} from './transport/index.ts';
export { createLocalTransport } from './transport/local.ts';
export type { Registration, Transport } from './transport/types.ts';
