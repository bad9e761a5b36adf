import type { Logger } from './logger';

export type LifecycleState = 'running' | 'stopping' | 'stopped' | 'failed';

export interface LifecycleOptions {
  logger: Logger;
  /** Hard deadline for the whole shutdown; past it the process exits with code 1. @default 10000 */
  graceMs?: number;
  /** Called when shutdown ends; tests replace it. @default process.exit */
  exit?: (code: number) => void;
}

interface Closer {
  name: string;
  close: () => Promise<void> | void;
}

/** Wraps `close` so that it runs once; later calls get the first call's promise. */
export function closeOnce(close: () => Promise<void> | void): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= Promise.resolve().then(close));
}

/**
 * The one owner of SIGTERM and SIGINT in a process.
 *
 * Shutdown order: resources close in the reverse of the order they were
 * registered, so whatever was started last (the HTTP listener, the consumers)
 * stops first and what everything depends on (producers, pools, tracing)
 * stops last. The whole shutdown has one grace deadline.
 */
export class Lifecycle {
  private readonly closers: Closer[] = [];
  private readonly logger: Logger;
  private readonly graceMs: number;
  private readonly exit: (code: number) => void;
  private stateValue: LifecycleState = 'running';
  private shuttingDown: Promise<void> | undefined;
  private signalsInstalled = false;

  constructor(options: LifecycleOptions) {
    this.logger = options.logger;
    this.graceMs = options.graceMs ?? 10_000;
    this.exit = options.exit ?? ((code) => process.exit(code));
  }

  get state(): LifecycleState {
    return this.stateValue;
  }

  get stopping(): boolean {
    return this.stateValue !== 'running';
  }

  /** Registers a resource to close at shutdown; its close runs at most once. */
  onShutdown(name: string, close: () => Promise<void> | void): void {
    this.closers.push({ name, close: closeOnce(close) });
  }

  installSignalHandlers(): void {
    if (this.signalsInstalled) return;
    this.signalsInstalled = true;
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        void this.shutdown(signal);
      });
    }
  }

  /** Closes every resource once; later calls return the same promise. */
  shutdown(reason: string, exitCode = 0): Promise<void> {
    this.shuttingDown ??= this.runShutdown(reason, exitCode);
    return this.shuttingDown;
  }

  private async runShutdown(reason: string, exitCode: number): Promise<void> {
    this.stateValue = 'stopping';
    const startedAt = Date.now();
    this.logger.info({ reason, graceMs: this.graceMs }, 'shutting down');
    const deadline = setTimeout(() => {
      this.stateValue = 'failed';
      this.logger.error({ reason, graceMs: this.graceMs }, 'shutdown passed its grace deadline; exiting now');
      this.exit(1);
    }, this.graceMs);
    let failed = false;
    for (const closer of [...this.closers].reverse()) {
      try {
        await closer.close();
        this.logger.debug({ resource: closer.name }, 'closed');
      } catch (err) {
        failed = true;
        this.logger.error({ err, resource: closer.name }, 'close failed');
      }
    }
    clearTimeout(deadline);
    if ((this.stateValue as LifecycleState) === 'failed') return;
    this.stateValue = failed ? 'failed' : 'stopped';
    this.logger.info({ reason, tookMs: Date.now() - startedAt }, 'stopped');
    this.exit(failed ? 1 : exitCode);
  }
}
