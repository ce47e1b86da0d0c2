import type { CallMiddleware, Client, Contract, Handlers } from '../core/contract.ts';

/** A served contract; `close` stops serving it. */
export interface Registration {
  close(): Promise<void>;
}

/**
 * Decides where a contract's calls go: a function call (`local`), `POST /rpc/<service>/<method>`
 * (`http`) or NATS request-reply (`nats`). Every transport passes the same conformance suite.
 */
export interface Transport {
  readonly kind: string;
  /** Serves a contract with its handlers. */
  serve<C extends Contract>(contract: C, handlers: Handlers<C>): Promise<Registration>;
  /** A typed client of a contract; calls may be wrapped by middleware (outermost first). */
  client<C extends Contract>(contract: C, middleware?: readonly CallMiddleware[]): Client<C>;
  /** Stops serving everything and releases connections. */
  close(): Promise<void>;
}
