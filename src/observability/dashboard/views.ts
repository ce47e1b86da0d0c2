/**
 * The JSON bodies of the dashboard's endpoints (`GET /dashboard/api/...`). A section this
 * process cannot show (no conversation store, no audit file, no usage feed) answers
 * `{ available: false, reason }` rather than failing, so the page can say why.
 */

/** A section this process does not have. */
export interface Unavailable {
  available: false;
  reason: string;
}

/** One readiness check, run when the page asked. */
export interface CheckView {
  name: string;
  ok: boolean;
  error?: string;
  /** How long the check took, milliseconds. */
  durationMs: number;
  /** Present (`true`) on a check whose failure leaves the process ready (a channel still starting). */
  optional?: true;
}

/** The process serving the dashboard. */
export interface ProcessView {
  name: string;
  version: string;
  /** The instance id, as in logs and traces. */
  instance: string;
  roles: string[];
  transport: string;
  /** ISO 8601. */
  startedAt: string;
  uptimeSeconds: number;
  /** `ready` when every check passed. */
  status: 'ready' | 'not ready';
  checks: CheckView[];
}

/** One endpoint of a discovered instance, with its counters. */
export interface EndpointView {
  name: string;
  subject: string;
  requests: number;
  errors: number;
  averageMs: number;
  lastError?: string;
}

/** A service instance found by discovery (NATS `$SRV`): it answered, so it is up. */
export interface InstanceView {
  name: string;
  contract?: string;
  id: string;
  /** The instance id of the process running it, as in its logs and traces (when it published one). */
  process?: string;
  /** `hostname:pid` of that process (when it published them). */
  host?: string;
  version: string;
  started?: string;
  /** Whether this process runs it. */
  local: boolean;
  requests: number;
  errors: number;
  /** The latest error any of its endpoints reported. */
  lastError?: string;
  endpoints: EndpointView[];
}

/** `GET /dashboard/api/services`. */
export interface ServicesView {
  process: ProcessView;
  /** Present when the deployment can be discovered (the nats transport). */
  discovery?:
    | { kind: string; ok: true; instances: InstanceView[] }
    | { kind: string; ok: false; error: string };
}

/** One row of `GET /dashboard/api/conversations`. */
export interface ConversationSummary {
  id: string;
  agentId: string;
  channel: string;
  peer: string;
  createdAt: number;
  updatedAt: number;
  messageCount: number;
  /** The start of the latest message. */
  preview: string;
}

/** A tool call of a turn, with its result when stored. */
export interface ToolCallView {
  id: string;
  /** The qualified name the model used (`inventory__lookupStock`). */
  name: string;
  skill?: string;
  tool?: string;
  /** The arguments, parsed when they are JSON (else the text as the model wrote it). */
  arguments: unknown;
  /** Whether the call succeeded; absent while no result is stored. */
  ok?: boolean;
  result?: unknown;
  error?: string;
}

/** One turn: the user's message, the tool calls the model made and the reply. */
export interface TurnView {
  /** Position of the turn's first message. */
  seq: number;
  /** Epoch milliseconds. */
  at: number;
  user?: string;
  toolCalls: ToolCallView[];
  /** Model steps (assistant messages) of the turn. */
  steps: number;
  reply?: string;
}

/** `GET /dashboard/api/conversations/:id`. */
export interface ConversationView {
  conversation: Omit<ConversationSummary, 'preview'>;
  turns: TurnView[];
  /** Whether older messages were left out. */
  truncated: boolean;
}

/** `GET /dashboard/api/audit`: the newest events of the audit file, newest first. */
export interface AuditView {
  available: true;
  file: string;
  events: AuditEvent[];
  /** Lines read that were not events (malformed or cut), left out. */
  skipped: number;
}

/** One line of the audit file. */
export interface AuditEvent {
  id?: string;
  type: string;
  time?: string;
  data?: unknown;
  [field: string]: unknown;
}

/** Usage of one model since the process started counting. */
export interface ModelUsage {
  model: string;
  requests: number;
  /** Answers from the cache: they used no provider tokens and are not in the token and cost sums. */
  cached: number;
  fallbacks: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** Whether any call reported a cost (a model without a known price reports none). */
  priced: boolean;
  averageLatencyMs: number;
  /** ISO 8601 time of the latest call. */
  lastAt: string;
}

/** `GET /dashboard/api/usage`. */
export interface UsageView {
  available: true;
  /** Where the figures come from (`events`: the `model.completed` events this process consumed). */
  source: string;
  /** ISO 8601: when counting began. */
  since: string;
  models: ModelUsage[];
  totals: { requests: number; inputTokens: number; outputTokens: number; costUsd: number };
}
