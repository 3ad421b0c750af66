// What the bench's unit tests share: the meta of a made-up run.
import type { Results } from '../src/report.js';

/** The meta of a made-up quick run on no machine in particular, with `settings`. */
export function blankMeta(settings: Record<string, unknown> = {}): Results['meta'] {
  return {
    date: '',
    mode: 'quick',
    command: '',
    node: '',
    cpu: '',
    cpus: 1,
    memoryGiB: 1,
    kernel: '',
    fileSystem: '',
    disk: '',
    loadStart: [],
    loadEnd: [],
    seconds: 0,
    settings,
    notes: [],
  };
}
