import { createClient } from 'redis';

/** Deletes every key matching `pattern` (a SCAN pattern such as `e2e1234:*`) from the Redis at `url`. */
export async function deleteRedisKeys(url: string, pattern: string): Promise<void> {
  const redis = createClient({ url });
  await redis.connect();
  try {
    for await (const keys of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys);
    }
  } finally {
    await redis.close();
  }
}
