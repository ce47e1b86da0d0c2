import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  /** The service or role name put on every line. */
  service?: string;
  /** This process's instance id, put on every line. */
  instance?: string;
  /** Where lines go; stdout when absent. */
  destination?: DestinationStream;
}

/** A pino JSON logger; every line carries `service`, and children add request and conversation ids. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    service: options.service ?? 'clawmesh',
    ...(options.instance ? { instance: options.instance } : {}),
  };
  const settings = { level: options.level ?? 'info', base, timestamp: pino.stdTimeFunctions.isoTime };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A logger that writes nothing, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
