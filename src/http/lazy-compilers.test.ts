import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazySchemaCompilers } from './lazy-compilers.ts';

describe('lazySchemaCompilers', () => {
  it('still validates and serializes a route that declares JSON schemas', async () => {
    const app = Fastify({ schemaController: lazySchemaCompilers() });
    app.post(
      '/echo',
      {
        schema: {
          body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      async (request) => ({ n: (request.body as { n: number }).n, dropped: 'by the serializer' }),
    );
    try {
      const bad = await app.inject({ method: 'POST', url: '/echo', payload: { n: 'x' } });
      expect(bad.statusCode).toBe(400);
      const good = await app.inject({ method: 'POST', url: '/echo', payload: { n: 7 } });
      expect(good.statusCode).toBe(200);
      // The response schema's serializer ran: the undeclared property is gone.
      expect(good.json()).toEqual({ n: 7 });
    } finally {
      await app.close();
    }
  });
});
