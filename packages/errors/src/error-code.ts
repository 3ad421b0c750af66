/**
 * The `code` of a thrown value when it is a string — a Node errno such as
 * `'ENOENT'`, a `WalErrorCode` or an argument error's code — else
 * `undefined`. Never throws, whatever `error` is (`null`, a string, any object).
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
