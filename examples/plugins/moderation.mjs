// Drops incoming messages that contain a blocked word (whole word, any case).
// The words are MODERATION_BLOCKLIST, comma-separated, read once at load; 'forbidden' by default.
const words = (process.env.MODERATION_BLOCKLIST ?? 'forbidden')
  .split(',')
  .map((word) => word.trim())
  .filter((word) => word.length > 0);
const escaped = words.map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
const blocked =
  escaped.length > 0
    ? new RegExp(`(?<![\\p{L}\\p{N}])(?:${escaped.join('|')})(?![\\p{L}\\p{N}])`, 'iu')
    : null;

export default {
  name: 'moderation',
  version: '1.0.0',
  // Before the other plugins, so a dropped message is never seen (or logged) by them.
  priority: 10,
  onMessageReceived(context, message) {
    if (blocked === null || !blocked.test(message.text)) return message;
    context.logger.info({ userId: message.userId }, 'message dropped by moderation');
    return null;
  },
};
