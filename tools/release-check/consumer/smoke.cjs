// CommonJS consumer: the same as smoke.mjs, loading the packages with
// require() (Node ≥ 20.19 loads ES modules from require).
const { Wal } = require('@wal/core');
const { WalError } = require('@wal/errors');
const { MemoryStore } = require('@wal/store');
const { exercise } = require('./exercise.mjs');

exercise({ Wal, WalError, MemoryStore }, process.argv[2]).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
