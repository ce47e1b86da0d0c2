// Transports

export type { TransportOptions } from './factory.ts';
export { createTransport } from './factory.ts';
export type { HttpTransport, HttpTransportOptions, ServiceUrls, UrlResolver } from './http.ts';
export { createHttpTransport } from './http.ts';
export type { LocalTransportOptions } from './local.ts';
export { createLocalTransport } from './local.ts';
export type { NatsTransport, NatsTransportOptions } from './nats.ts';
export { CONTRACT_METADATA_KEY, createNatsTransport, natsServiceName, subjectOf } from './nats.ts';
// Discovery
export type { EndpointStats, ListServicesOptions, ServiceInstance } from './nats-discovery.ts';
export { listServices } from './nats-discovery.ts';
export type { MicroService } from './nats-micro.ts';
export type { Registration, Transport } from './types.ts';
export { DEFAULT_MAX_PAYLOAD_BYTES, isPayloadTooLarge } from './wire.ts';
