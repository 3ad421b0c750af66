// What every JavaScript consumer does with the packages it was given (so the
// ES module and CommonJS consumers differ only in how they load them): write
// three records durably to a new log in `dir`, reopen it, and read them back.
export async function exercise({ Wal, WalError, MemoryStore }, dir) {
  const wal = await Wal.open(dir);
  for (const text of ['one', 'two', 'three']) {
    await wal.append(new TextEncoder().encode(text), { wait: 'durable' });
  }
  await wal.close();

  const reopened = await Wal.open(dir);
  const read = [];
  for await (const { payload } of reopened.iterate()) read.push(new TextDecoder().decode(payload));
  await reopened.close();
  return {
    read,
    store: typeof MemoryStore,
    errors: Object.getPrototypeOf(WalError.prototype) === Error.prototype,
  };
}
