// ES module consumer: `node smoke.mjs <dir>` imports the packages, runs the
// exercise on a new log in <dir> and prints what it read back as JSON.
import { Wal } from '@wal/core';
import { WalError } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { exercise } from './exercise.mjs';

console.log(JSON.stringify(await exercise({ Wal, WalError, MemoryStore }, process.argv[2])));
