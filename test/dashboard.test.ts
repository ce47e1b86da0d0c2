import { readFileSync } from 'node:fs';
import { it } from 'vitest';
import { startTestApp } from './support/app.ts';
it('probe', async () => {
  const t = await startTestApp();
  const events: unknown[] = [];
  await t.app.services.bus.subscribe('model.completed', 'probe', (e) => { events.push(e); });
  const r = await t.post('/v1/messages', { userId: 'u1', text: 'how many red shirts are in stock?' });
  console.log(JSON.stringify(r.body));
  await t.app.services.bus.drain();
  const recent = await t.app.services.conversations!.recent(5);
  console.log(JSON.stringify(recent));
  console.log(JSON.stringify(await t.app.services.conversations!.messages(recent[0]!.id), null, 1));
  console.log(JSON.stringify(events, null, 1));
  console.log(readFileSync(`${t.dir}/audit.jsonl`, 'utf8'));
  console.log([...t.app.services.roles], t.app.services.checks.map(c => c.name), t.app.config.audit.path);
  await t.stop();
});
