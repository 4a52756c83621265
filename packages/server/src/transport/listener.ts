// The one listener: every connection starts as plain TCP. Its first byte decides: 0x16 is a TLS
// ClientHello (when a certificate is configured), anything else is an HTTP/1.1 message.
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import type { ConnectionHost } from './host.js';
import { TcpConnection } from './tcp-connection.js';

const TLS_HANDSHAKE = 0x16;

const REJECT_BODY = '503: too many connections (maxConnections)';
const TOO_MANY_CONNECTIONS =
  'HTTP/1.1 503 Service Unavailable\r\nerror_code: ZBUS_ERR_LIMIT\r\nconnection: close\r\n' +
  `content-type: text/plain\r\ncontent-length: ${REJECT_BODY.length}\r\n\r\n${REJECT_BODY}`;

export interface Listener {
  readonly server: Server;
  readonly connections: Set<TcpConnection>;
  /** Destroys every socket still open: connections, rejected ones still closing, TLS handshakes in progress. */
  destroyAll(): void;
}

export function createListener(host: ConnectionHost, canAccept: () => boolean): Listener {
  const connections = new Set<TcpConnection>();
  const o = host.options;
  const secureContext: SecureContext | undefined = o.tls
    ? createSecureContext({ cert: o.tls.cert as string, key: o.tls.key as string })
    : undefined;

  const start = (socket: Socket, first?: Uint8Array) => {
    const c = new TcpConnection(socket, host, first);
    connections.add(c);
    host.metrics.connections++;
    socket.once('close', () => {
      connections.delete(c);
      host.metrics.connections--;
    });
  };

  const sockets = new Set<Socket>();
  // allowHalfOpen: a client's FIN ends its requests, not our replies (tcp-connection.ts closes when answered).
  const server = createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    host.metrics.connectionsTotal++;
    if (!canAccept() || connections.size >= o.maxConnections) {
      host.metrics.connectionsRejected++;
      // A clear answer instead of a silent reset; the client may be plain HTTP.
      socket.on('error', () => {});
      socket.end(TOO_MANY_CONNECTIONS);
      // Read (and drop) what the peer sends, so that its close is seen at once: an unread socket keeps one of
      // Node's maxConnections slots until the timer below, and a burst of refusals would reset everyone.
      socket.resume();
      // A peer that never closes its side must not hold the slot (or server.close()) forever.
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    if (!secureContext) {
      start(socket);
      return;
    }
    // Until its first byte says TLS or not, a silent connection is closed after the idle timeout as well.
    if (o.idleTimeoutMs > 0) socket.setTimeout(o.idleTimeoutMs, () => socket.destroy());
    // A peer that says goodbye before its first byte has nothing to answer (the socket is half-open).
    const endedEarly = () => socket.destroy();
    socket.once('end', endedEarly);
    socket.once('data', (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.off('end', endedEarly);
      if (chunk[0] === TLS_HANDSHAKE) {
        socket.pause();
        // TLSSocket takes over the socket's handle and, on its first read, replays what is buffered on the
        // raw socket, so the ClientHello is not lost. The raw socket must stay paused: resuming it would
        // flow the unshifted bytes to no listener before the TLS layer reads them (the handshake then hangs).
        socket.unshift(chunk);
        const tls = new TLSSocket(socket, { isServer: true, secureContext });
        tls.on('error', () => socket.destroy());
        start(tls as unknown as Socket);
      } else {
        start(socket, chunk);
      }
    });
    socket.on('error', () => {});
  });
  server.maxConnections = o.maxConnections + 64; // the extra room lets us answer 503 instead of resetting
  return {
    server,
    connections,
    destroyAll() {
      for (const c of connections) c.destroy();
      for (const s of sockets) s.destroy();
    },
  };
}
