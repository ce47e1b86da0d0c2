import net from 'node:net';

/*
 * A test helper: the commands a Redis server runs, as MONITOR shows them, so a test can count
 * what one store call costs the server (the commands inside its Lua script included).
 */

/** A client's command and the commands its Lua script ran, as MONITOR lines. */
export interface MonitoredCall {
  command: string;
  scripted: string[];
}

/** A MONITOR connection: the calls seen so far whose line holds `marker`, and a way to stop. */
export interface RedisMonitor {
  calls(marker: string): MonitoredCall[];
  stop(): void;
}

/** Starts MONITOR on the server at `url` (`redis://host:port`); resolves once it is on. */
export async function monitorRedis(url: string): Promise<RedisMonitor> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port || 6379), hostname);
  const lines: string[] = [];
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end = buffer.indexOf('\r\n');
      while (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line === '+OK') resolve();
        else lines.push(line);
        end = buffer.indexOf('\r\n');
      }
    });
    socket.write('MONITOR\r\n');
  });
  return {
    calls(marker) {
      const calls: MonitoredCall[] = [];
      let current: MonitoredCall | undefined;
      for (const line of lines) {
        // A script's commands follow its EVALSHA, tagged `[<db> lua]`: nothing runs in between.
        if (/^\+\S+ \[\d+ lua\]/.test(line)) {
          current?.scripted.push(line);
          continue;
        }
        current = line.includes(marker) ? { command: line, scripted: [] } : undefined;
        if (current) calls.push(current);
      }
      return calls;
    },
    stop() {
      socket.destroy();
    },
  };
}
