import { Client } from 'pg';
import { backoffMs, type BackoffPolicy } from './retry';

/**
 * LISTEN on a Postgres channel with a connection of its own, reconnecting
 * after a failure. While it is disconnected notifications may be missed, so
 * `onReset` tells the owner to drop whatever it derived from them.
 */
export class PgListener {
  private client: Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  /** Reconnections tried since the last connection that worked. */
  private attempts = 0;

  constructor(
    private readonly options: {
      databaseUrl: string;
      channel: string;
      onMessage: (payload: string | undefined) => void;
      onReset: () => void;
      onError: (err: unknown) => void;
      /** @default 250 ms doubling up to 2 s: a notification missed for longer is a stale view */
      retry?: BackoffPolicy;
    },
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(options.channel)) throw new Error(`invalid channel name "${options.channel}"`);
  }

  get listening(): boolean {
    return this.client !== undefined;
  }

  async start(): Promise<void> {
    const client = new Client({ connectionString: this.options.databaseUrl });
    client.on('notification', (msg) => this.options.onMessage(msg.payload));
    client.on('error', (err) => this.reconnect(err));
    client.on('end', () => this.reconnect(new Error('listener connection ended')));
    await client.connect();
    await client.query(`listen ${this.options.channel}`);
    this.client = client;
  }

  private reconnect(err: unknown): void {
    if (this.closed || this.retry) return;
    this.client = undefined;
    this.options.onReset();
    this.options.onError(err);
    this.attempts += 1;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start().then(
        () => {
          this.attempts = 0;
          this.options.onReset();
        },
        (e: unknown) => this.reconnect(e),
      );
    }, backoffMs(this.attempts, this.options.retry ?? { initialMs: 250, maxMs: 2_000 }));
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }
}
