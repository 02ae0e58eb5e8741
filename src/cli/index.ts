#!/usr/bin/env node
// Entry point of dist/cli.js, the `tollgate` bin. Exit codes: 0 done, 1 not found or refused,
// 2 bad arguments, 78 invalid configuration; a failure is always one line on stderr.
import { CommanderError } from 'commander';
import { describeFailure, oneLine } from './errors.ts';
import { buildProgram } from './program.ts';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) {
    process.exitCode = 0;
  } else {
    const { code, line } = describeFailure(err);
    process.stderr.write(`tollgate: ${oneLine(line)}\n`);
    process.exitCode = code;
  }
}
