// An audit trail of every message in and every response out, one JSON line each.
// The file is AUDIT_LOG_FILE, or ./data/plugin-audit.jsonl; its directory is created.
const fs = require('node:fs');
const path = require('node:path');

function append(context, direction, text) {
  const file = path.resolve(process.env.AUDIT_LOG_FILE || './data/plugin-audit.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const line = {
    time: new Date().toISOString(),
    conversationId: context.conversationId,
    userId: context.userId,
    channel: context.channel,
    direction,
    text,
  };
  fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
}

module.exports = {
  name: 'audit-logger',
  version: '1.0.0',
  onMessageReceived(context, message) {
    append(context, 'in', message.text);
    return message;
  },
  onResponseGenerated(context, response) {
    append(context, 'out', response.text);
    return response;
  },
};
