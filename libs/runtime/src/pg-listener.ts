import { Client } from 'pg';

/**
 * LISTEN on a Postgres channel with a connection of its own, reconnecting
 * after a failure. While it is disconnected notifications may be missed, so
 * `onReset` tells the owner to drop whatever it derived from them.
 */
export class PgListener {
  private client: Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: {
      databaseUrl: string;
      channel: string;
      onMessage: (payload: string | undefined) => void;
      onReset: () => void;
      onError: (err: unknown) => void;
      retryMs?: number;
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
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start().then(
        () => this.options.onReset(),
        (e: unknown) => this.reconnect(e),
      );
    }, this.options.retryMs ?? 1_000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }
}
