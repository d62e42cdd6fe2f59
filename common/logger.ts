import pino from 'pino';

/** Structured logs (pino): one JSON object per line on stderr. Nothing is logged per message on hot paths. */
export const LogLevels = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/**
 * @param write where lines go instead of stderr (tests capture them).
 */
export function createLogger(level: LogLevel = 'info', base: Record<string, unknown> = {}, write?: (line: string) => void): Logger {
  const destination = write ? { write: (line: string) => write(line.trimEnd()) } : pino.destination({ fd: 2, sync: true });
  return wrap(
    pino(
      {
        level,
        base,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      destination,
    ),
  );
}

function wrap(logger: pino.Logger): Logger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
    child: (fields) => wrap(logger.child(fields)),
  };
}

export const silentLogger: Logger = createLogger('silent');
