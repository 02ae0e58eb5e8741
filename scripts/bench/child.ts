// What the bench's child servers share: listen on a free port of 127.0.0.1, tell the parent
// which one over the IPC channel, and stop when the parent goes away.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The one message a child sends its parent. */
export interface ReadyMessage {
  port: number;
}

export function serveForParent(server: Server): void {
  // Keep-alive for the whole run: a closed connection mid-bench measures reconnects, not proxying.
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => {
    const ready: ReadyMessage = { port: (server.address() as AddressInfo).port };
    process.send!(ready);
  });
  // The parent closing the IPC channel (it exited or crashed) ends the child too.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}
