import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ISocketFactory } from 'kafkajs';

/** Kafka's API keys of the requests a fault can be aimed at. */
export const API_KEYS = { produce: 0, fetch: 1, metadata: 3, addPartitionsToTxn: 24, endTxn: 26 } as const;

/**
 * What happens to the next request that matches: `drop-response` forwards it to the broker and, once the broker has
 * answered (so it did the work), closes the client's connection instead of passing the answer on; `close` closes the
 * connection without forwarding it (the broker never sees it); `delay-response` passes the answer on `delayMs` late.
 */
export interface Fault {
  apiKey: number;
  /** `host:port` of the broker as the client addresses it; any broker when absent. */
  broker?: string;
  action: 'drop-response' | 'close' | 'delay-response';
  delayMs?: number;
  /**
   * A delayed answer holds back the answers behind it on its connection, as a broker's would (it serves one request
   * of a connection at a time). With `overtaken`, later answers pass it: the client's other requests to that broker
   * are not held up (a client that sent them on another connection, or to another broker, would see that).
   */
  overtaken?: boolean;
  /** The next `times` matching requests fail so (a client's own retries included). @default 1 */
  times?: number;
  /** Refuse every new connection from the moment the fault happens (until `refuseConnections(false)`). */
  thenRefuseConnections?: boolean;
}

/**
 * A network between a Kafka client and real brokers that can be told to fail in one exact place: every connection of a
 * client made with `socketFactory` goes through a TCP proxy in this process, which reads the Kafka protocol's frames
 * (size, API key, correlation id) and applies faults to the requests they name. Nothing is simulated: the brokers are
 * real and receive the client's bytes unchanged; only the network between them misbehaves, on cue.
 */
export interface FaultyNetwork {
  socketFactory: ISocketFactory;
  /** Arms a fault for the next matching request(s); resolves when it has first happened. */
  inject(fault: Fault): Promise<void>;
  refuseConnections(refuse: boolean): void;
  /** Disarms the faults that have not happened (or not as many times as asked). */
  clearFaults(): void;
  close(): Promise<void>;
}

interface ArmedFault extends Fault {
  happened: () => void;
  remaining: number;
}

/** The first whole frame of the Kafka protocol (a 4-byte size, then that many bytes) in `buffer`, if it holds one. */
function nextFrame(buffer: Buffer): Buffer | undefined {
  if (buffer.length < 4 || buffer.length < 4 + buffer.readInt32BE(0)) return undefined;
  return buffer.subarray(0, 4 + buffer.readInt32BE(0));
}

export async function startFaultyNetwork(): Promise<FaultyNetwork> {
  const armed: ArmedFault[] = [];
  const sockets = new Set<Socket>();
  let refusing = false;

  const take = (apiKey: number, broker: string): ArmedFault | undefined => {
    const fault = armed.find((f) => f.apiKey === apiKey && (f.broker === undefined || f.broker === broker));
    if (fault && --fault.remaining === 0) armed.splice(armed.indexOf(fault), 1);
    return fault;
  };

  const happen = (fault: ArmedFault) => {
    if (fault.thenRefuseConnections) refusing = true;
    fault.happened();
  };

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (refusing) {
      client.destroy();
      return;
    }
    let upstream: Socket | undefined;
    let broker = '';
    let fromClient = Buffer.alloc(0);
    let fromBroker = Buffer.alloc(0);
    const pending = new Map<number, { fault: ArmedFault }>();
    // Answers go back in order: a delayed one holds back those behind it, as a slow broker would.
    let delivery = Promise.resolve();
    const closeBoth = () => {
      client.destroy();
      upstream?.destroy();
    };

    const forwardRequests = () => {
      for (let frame = nextFrame(fromClient); frame; frame = nextFrame(fromClient)) {
        fromClient = fromClient.subarray(frame.length);
        const apiKey = frame.readInt16BE(4);
        const correlationId = frame.readInt32BE(8);
        const fault = take(apiKey, broker);
        if (fault?.action === 'close') {
          happen(fault);
          closeBoth();
          return;
        }
        if (fault) pending.set(correlationId, { fault });
        upstream!.write(frame);
      }
    };

    const returnResponses = () => {
      for (let frame = nextFrame(fromBroker); frame; frame = nextFrame(fromBroker)) {
        fromBroker = fromBroker.subarray(frame.length);
        const correlationId = frame.readInt32BE(4);
        const waiting = pending.get(correlationId);
        pending.delete(correlationId);
        if (waiting?.fault.action === 'drop-response') {
          happen(waiting.fault);
          closeBoth();
          return;
        }
        const delayMs = waiting?.fault.action === 'delay-response' ? (waiting.fault.delayMs ?? 1000) : 0;
        if (delayMs > 0 && waiting?.fault.overtaken) {
          setTimeout(() => {
            if (!client.destroyed) client.write(frame);
            happen(waiting.fault);
          }, delayMs);
          continue;
        }
        delivery = delivery.then(async () => {
          if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
          if (!client.destroyed) client.write(frame);
          if (waiting) happen(waiting.fault);
        });
      }
    };

    // The client's first bytes name the broker it wants: a 2-byte length and `host:port`.
    let preamble = Buffer.alloc(0);
    const onPreamble = (chunk: Buffer) => {
      preamble = Buffer.concat([preamble, chunk]);
      if (preamble.length < 2 || preamble.length < 2 + preamble.readUInt16BE(0)) return;
      const length = preamble.readUInt16BE(0);
      broker = preamble.subarray(2, 2 + length).toString();
      fromClient = preamble.subarray(2 + length);
      client.off('data', onPreamble);
      client.pause();
      const [host, port] = [broker.slice(0, broker.lastIndexOf(':')), Number(broker.slice(broker.lastIndexOf(':') + 1))];
      upstream = connect({ host, port }, () => {
        client.on('data', (data: Buffer) => {
          fromClient = Buffer.concat([fromClient, data]);
          forwardRequests();
        });
        client.resume();
        forwardRequests();
      });
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream!);
        client.destroy();
      });
      upstream.on('error', () => undefined);
      upstream.on('data', (data: Buffer) => {
        fromBroker = Buffer.concat([fromBroker, data]);
        returnResponses();
      });
      client.on('close', () => upstream?.destroy());
    };
    client.on('data', onPreamble);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxyPort = (server.address() as { port: number }).port;

  const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    if (ssl) throw new Error('the faulty network carries plaintext connections only');
    const socket = connect({ host: '127.0.0.1', port: proxyPort }, onConnect);
    const name = Buffer.from(`${host}:${port}`);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(name.length);
    socket.write(Buffer.concat([length, name]));
    return socket;
  };

  return {
    socketFactory,
    inject: (fault) => new Promise<void>((happened) => armed.push({ ...fault, happened, remaining: fault.times ?? 1 })),
    clearFaults: () => {
      armed.splice(0);
    },
    refuseConnections: (refuse) => {
      refusing = refuse;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
