// ssl: the PEM certificate of a server (zbus-protocol.md §5), so that clients can trust a TLS broker they
// learnt about from a tracker. This broker knows its own certificate only.
import { ZbusError } from '@zbus/protocol';
import type { CommandContext } from './context.js';
import { okText } from './reply.js';

export function ssl(ctx: CommandContext): void {
  const { state, msg } = ctx;
  const wanted = msg.headers.server;
  const cert = state.options.tls?.cert;
  if (cert === undefined || (wanted !== undefined && wanted !== '' && wanted !== state.announced)) {
    throw new ZbusError('ZBUS_ERR_NOT_FOUND', `Certificate(${wanted || state.announced}) Not Found`);
  }
  ctx.ticket.send(okText(typeof cert === 'string' ? cert : new TextDecoder().decode(cert)));
}
