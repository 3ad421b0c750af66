#!/usr/bin/env node
/** The `wal` command. See README.md. */
import { run } from './cli.js';

process.exitCode = await run(process.argv);
