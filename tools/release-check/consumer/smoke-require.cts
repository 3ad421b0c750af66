// TypeScript consumer compiled to CommonJS: its imports become require() of
// the packages' ES modules, which TypeScript accepts under module nodenext.
import { Wal } from '@wal/core';

async function main(dir: string): Promise<void> {
  const wal = await Wal.open(dir);
  await wal.append(new TextEncoder().encode('one'), { wait: 'durable' });
  await wal.close();
  const reopened = await Wal.open(dir);
  const read: string[] = [];
  for await (const { payload } of reopened.iterate()) read.push(new TextDecoder().decode(payload));
  await reopened.close();
  console.log(JSON.stringify({ read }));
}

main(process.argv[2] ?? 'log').catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
