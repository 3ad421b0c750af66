/**
 * The `code` of a thrown value when it is a string — a Node errno such as
 * `'ENOENT'`, a `WalErrorCode` or an argument error's code — else
 * `undefined`. Never throws, whatever `error` is (`null`, a string, any
 * object, one whose `code` getter throws, a revoked `Proxy`).
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  let code: unknown;
  try {
    code = (error as { code?: unknown }).code;
  } catch {
    return undefined; // a throwing getter, a revoked Proxy
  }
  return typeof code === 'string' ? code : undefined;
}
