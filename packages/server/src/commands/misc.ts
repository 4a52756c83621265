// heartbeat (never answered, never checked) and ping.
import type { CommandContext } from './context.js';
import { okText } from './reply.js';

export function heartbeat(ctx: CommandContext): void {
  ctx.ticket.none('heartbeat');
}

export function ping(ctx: CommandContext): void {
  ctx.ticket.send(okText('OK'));
}
