// Entry point of dist/server.js. A failure to start is one line on stderr, not a stack trace,
// when it is one the operator can act on.
import { GatewayLockedError } from './db/gateway-lock.ts';
import { loadDotEnvOrExit } from './dot-env.ts';
import { main } from './main.ts';

loadDotEnvOrExit(process.env);

main().catch((err: NodeJS.ErrnoException & { address?: string; port?: number }) => {
  let line = err.stack ?? err.message;
  if (err instanceof GatewayLockedError) line = err.message;
  else if (err.code === 'EADDRINUSE') line = `cannot listen on ${err.address}:${err.port}: the port is in use by another program; stop it or set PORT`;
  else if (err.code === 'EACCES' && err.syscall === 'listen') line = `cannot listen on ${err.address}:${err.port}: permission denied (ports below 1024 need privileges); set PORT`;
  process.stderr.write(`tollgate: ${line}\n`);
  process.exit(1);
});
