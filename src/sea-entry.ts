// Entry point of the single executable (`npm run package`): the gateway and the CLI in one
// program. No arguments, or `serve`, runs the gateway; anything else is a CLI command. ./.env is
// loaded first, as dist/server.js and dist/cli.js do.
import { run } from './cli/run.ts';
import { loadDotEnvOrExit } from './dot-env.ts';

loadDotEnvOrExit(process.env);
const argv = process.argv.slice(2);
void run(argv.length === 0 ? ['serve'] : argv, {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
}).then((code) => {
  process.exitCode = code;
});
