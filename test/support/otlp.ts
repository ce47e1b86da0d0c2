import type { IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';

/*
 * What a loopback OTLP/HTTP receiver needs: the body of `POST /v1/traces`, in either encoding
 * (`application/x-protobuf`, the default, or `application/json`), read into the OTLP JSON
 * mapping (ids in hex, 64-bit times as decimal strings), so tests check one shape. The protobuf
 * reader covers the fields of opentelemetry-proto's trace/v1 that an exporter writes.
 */

/** An OTLP `AnyValue` in the JSON mapping. */
export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values: OtlpAnyValue[] };
}

/** An OTLP `KeyValue`. */
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

/** An OTLP span in the JSON mapping. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  events: { name: string; timeUnixNano: string; attributes: OtlpKeyValue[] }[];
  status: { code: number; message?: string };
  flags: number;
}

/** An OTLP `ExportTraceServiceRequest` in the JSON mapping. */
export interface OtlpTraceRequest {
  resourceSpans: {
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

/** Reads a `POST /v1/traces` body by its content type and encoding. */
export function readTraceRequest(body: Buffer, headers: IncomingHttpHeaders): OtlpTraceRequest {
  const bytes = headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
  if (String(headers['content-type']).startsWith('application/x-protobuf')) return decodeTraceRequest(bytes);
  return JSON.parse(bytes.toString('utf8')) as OtlpTraceRequest;
}

/** A protobuf field: its number, and its value (a number, or the bytes of a length-delimited field). */
type Field = { field: number; value: number | bigint | Buffer };

/** The fields of one protobuf message, in order. */
function fieldsOf(bytes: Buffer): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = bytes[pos++];
      if (byte === undefined) throw new Error('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    switch (tag & 7) {
      case 0:
        fields.push({ field, value: varint() });
        break;
      case 1:
        fields.push({ field, value: bytes.subarray(pos, pos + 8) });
        pos += 8;
        break;
      case 2: {
        const length = Number(varint());
        if (pos + length > bytes.length) throw new Error('truncated field');
        fields.push({ field, value: bytes.subarray(pos, pos + length) });
        pos += length;
        break;
      }
      case 5:
        fields.push({ field, value: bytes.readUInt32LE(pos) });
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
  }
  return fields;
}

const bytesOf = (f: Field) => f.value as Buffer;
const stringOf = (f: Field) => bytesOf(f).toString('utf8');
const fixed64Of = (f: Field) => bytesOf(f).readBigUInt64LE(0).toString();

function anyValueOf(bytes: Buffer): OtlpAnyValue {
  const [f] = fieldsOf(bytes);
  if (!f) return {};
  switch (f.field) {
    case 1:
      return { stringValue: stringOf(f) };
    case 2:
      return { boolValue: f.value === 1n };
    case 3: {
      const signed = BigInt.asIntN(64, f.value as bigint);
      return { intValue: Number.isSafeInteger(Number(signed)) ? Number(signed) : signed.toString() };
    }
    case 4:
      return { doubleValue: bytesOf(f).readDoubleLE(0) };
    case 5:
      return { arrayValue: { values: fieldsOf(bytesOf(f)).map((item) => anyValueOf(bytesOf(item))) } };
    default:
      return {};
  }
}

function keyValueOf(bytes: Buffer): OtlpKeyValue {
  const kv: OtlpKeyValue = { key: '', value: {} };
  for (const f of fieldsOf(bytes)) {
    if (f.field === 1) kv.key = stringOf(f);
    else if (f.field === 2) kv.value = anyValueOf(bytesOf(f));
  }
  return kv;
}

function spanOf(bytes: Buffer): OtlpSpan {
  const span: OtlpSpan = {
    traceId: '',
    spanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: '0',
    endTimeUnixNano: '0',
    attributes: [],
    events: [],
    status: { code: 0 },
    flags: 0,
  };
  for (const f of fieldsOf(bytes)) {
    switch (f.field) {
      case 1:
        span.traceId = bytesOf(f).toString('hex');
        break;
      case 2:
        span.spanId = bytesOf(f).toString('hex');
        break;
      case 4:
        span.parentSpanId = bytesOf(f).toString('hex');
        break;
      case 5:
        span.name = stringOf(f);
        break;
      case 6:
        span.kind = Number(f.value);
        break;
      case 7:
        span.startTimeUnixNano = fixed64Of(f);
        break;
      case 8:
        span.endTimeUnixNano = fixed64Of(f);
        break;
      case 9:
        span.attributes.push(keyValueOf(bytesOf(f)));
        break;
      case 11: {
        const event = { name: '', timeUnixNano: '0', attributes: [] as OtlpKeyValue[] };
        for (const e of fieldsOf(bytesOf(f))) {
          if (e.field === 1) event.timeUnixNano = fixed64Of(e);
          else if (e.field === 2) event.name = stringOf(e);
          else if (e.field === 3) event.attributes.push(keyValueOf(bytesOf(e)));
        }
        span.events.push(event);
        break;
      }
      case 15:
        for (const s of fieldsOf(bytesOf(f))) {
          if (s.field === 2) span.status.message = stringOf(s);
          else if (s.field === 3) span.status.code = Number(s.value);
        }
        break;
      case 16:
        span.flags = f.value as number;
        break;
    }
  }
  return span;
}

/** Decodes a protobuf `ExportTraceServiceRequest`. */
export function decodeTraceRequest(bytes: Buffer): OtlpTraceRequest {
  const request: OtlpTraceRequest = { resourceSpans: [] };
  for (const rs of fieldsOf(bytes)) {
    if (rs.field !== 1) continue;
    const resourceSpans: OtlpTraceRequest['resourceSpans'][number] = {
      resource: { attributes: [] },
      scopeSpans: [],
    };
    for (const f of fieldsOf(bytesOf(rs))) {
      if (f.field === 1) {
        for (const a of fieldsOf(bytesOf(f))) {
          if (a.field === 1) resourceSpans.resource.attributes.push(keyValueOf(bytesOf(a)));
        }
      } else if (f.field === 2) {
        const scopeSpans = { scope: { name: '' }, spans: [] as OtlpSpan[] };
        for (const s of fieldsOf(bytesOf(f))) {
          if (s.field === 1) {
            for (const n of fieldsOf(bytesOf(s))) if (n.field === 1) scopeSpans.scope.name = stringOf(n);
          } else if (s.field === 2) scopeSpans.spans.push(spanOf(bytesOf(s)));
        }
        resourceSpans.scopeSpans.push(scopeSpans);
      }
    }
    request.resourceSpans.push(resourceSpans);
  }
  return request;
}
