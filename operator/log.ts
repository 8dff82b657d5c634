// Structured JSON logs in the sidecar's format, marked as the operator's.
import { pino, type Logger } from 'pino';

export function createOperatorLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component: 'operator' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}
