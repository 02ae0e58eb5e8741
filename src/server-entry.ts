// Entry point of dist/server.js.
import { main } from './main.ts';

main().catch((err: Error) => {
  process.stderr.write(`tollgate: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
