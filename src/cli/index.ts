#!/usr/bin/env node
// Entry point of dist/cli.js, the `tollgate` bin: run.ts with this process's arguments, environment
// (with ./.env added) and streams.
import { loadDotEnvOrExit } from '../dot-env.ts';
import { run } from './run.ts';

loadDotEnvOrExit(process.env);

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
