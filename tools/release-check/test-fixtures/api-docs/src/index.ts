/**
 * A package whose API reference must fail the check: one export without a
 * doc comment, one link to nothing.
 *
 * @packageDocumentation
 */

/** Documented, but links to {@link Nowhere}. */
export const documented = 1;

export function undocumented(): number {
  return documented;
}
