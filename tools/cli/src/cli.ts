/**
 * The `wal` program: its commands and options (commander), and the mapping
 * of every outcome to an exit code and at most one line on stderr.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { parseCount, parseInterval, parseMode, parseSize } from './args.js';
import type { Io } from './commands/shared.js';
// The commands load on use: `--help` and usage errors start without @wal/core.
import { describeError, EXIT } from './errors.js';
import { Output, RECORD_FORMATS } from './output.js';

function version(): string {
  const file = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** Commander's error text as one line: `unknown option '--x' (Did you mean --y?)`. */
function oneLine(text: string): string {
  return text
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join(' ');
}

const segmentSizeOption = () =>
  new Option(
    '--segment-size <bytes>',
    'segment size of a log without metadata (wal-db 1.x), e.g. 64M',
  ).argParser(parseSize);
const maxRecordSizeOption = () =>
  new Option(
    '--max-record-size <bytes>',
    "largest record to accept, e.g. 128M (default: the log's own; 64 MiB, wal-db's default, without metadata)",
  ).argParser(parseSize);
const modeOption = (what: string, fallback = '644') =>
  new Option(
    '--mode <octal>',
    `permissions of ${what}, before the umask (default ${fallback}); a directory gets the search bit with each read bit (700 for 600)`,
  ).argParser(parseMode);
const skipOption = () =>
  new Option('--skip', "read as recovery 'skip' does: step over damaged records it can");
const formatOption = () =>
  new Option(
    '--format <format>',
    'payload format: utf8 (escaped text), hex, or json (JSON Lines, base64)',
  )
    .choices(RECORD_FORMATS)
    .default('utf8');

/** Builds the program; `io` is where commands write. */
export function program(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('wal');
  program
    .description('Look inside, verify, dump, follow, repair and back up @wal write-ahead logs.')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => io.err.write(text),
      outputError: (text, write) => write(`wal: ${oneLine(text)}\n`),
    })
    .addHelpText(
      'after',
      '\nA directory is a segmented log, a regular file a single-file log.\n' +
        'Exit codes: 0 ok (verify: also a torn tail), 1 damaged log, 2 usage or I/O error,\n' +
        '3 repair declined, 4 a log of a later format version.',
    );

  // Every command reads a log given as <path>, with --segment-size and
  // --max-record-size; all but repair (which has its own) take --skip.
  const logCommand = (
    name: string,
    configure: (command: Command) => Command,
    { skip = true } = {},
  ): Command => {
    const command = configure(
      program.command(name).argument('<path>', 'the log: a directory (segmented) or a file'),
    );
    if (skip) command.addOption(skipOption());
    return command.addOption(segmentSizeOption()).addOption(maxRecordSizeOption());
  };

  logCommand('info', (command) =>
    command
      .description('show what a log is and holds, and whether a live process holds it open')
      .option('--json', 'print one JSON object'),
  ).action(async (path: string, options) =>
    setExit(await (await import('./commands/info.js')).info(path, options, io)),
  );

  logCommand('verify', (command) =>
    command
      .summary('check every record (read-only)')
      .description(
        // One line per paragraph: the help wraps it to the terminal.
        'Check every record of the log, read-only (it works while a writer holds the log).\n' +
          'Exit 0 for a clean log or a torn tail (what recovery will cut is shown), ' +
          '1 for damage below the durable hint.',
      )
      .option('--json', 'print one JSON object'),
  ).action(async (path: string, options) =>
    setExit(await (await import('./commands/verify.js')).verify(path, options, io)),
  );

  logCommand('dump', (command) =>
    command
      .description('print records, one per line: LSN, length, payload')
      .addOption(
        new Option('--from <lsn>', 'start at this LSN (a record boundary)').argParser(parseCount),
      )
      .addOption(new Option('--limit <n>', 'print at most n records').argParser(parseCount))
      .addOption(formatOption())
      .option('--json', 'same as --format json'),
  ).action(async (path: string, options) =>
    setExit(await (await import('./commands/dump.js')).dump(path, options, io)),
  );

  logCommand('tail', (command) =>
    command
      .description('print the last records; with --follow, then the records appended after')
      .option('-f, --follow', 'keep printing records as they are appended (until interrupted)')
      .addOption(
        new Option('-n, --lines <n>', 'how many of the last records to print first')
          .argParser(parseCount)
          .default(10),
      )
      .addOption(
        new Option('--interval <ms>', 'with --follow: how often to look for new records')
          .argParser(parseInterval)
          .default(150),
      )
      .addOption(formatOption())
      .option('--json', 'same as --format json'),
  ).action(async (path: string, options) =>
    setExit(await (await import('./commands/tail.js')).tail(path, options, io)),
  );

  logCommand(
    'repair',
    (command) =>
      command
        .summary('cut a log at its first damage, keeping the cut bytes in a backup file')
        .description(
          'Cut the log at its first damage (a torn tail, or damage below the durable hint), ' +
            'after showing the plan, asking, and saving the cut bytes to a backup file.\n' +
            "With --skip, damaged records the 'skip' recovery policy can step over stay in the log.",
        )
        .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
        .option('--dry-run', 'show what would be done, do nothing')
        .option('--skip', "step over damaged records (recovery 'skip') instead of cutting at them")
        .option('--backup-dir <dir>', 'where to write the backup file (default: beside the log)')
        .addOption(modeOption('the backup file and any file of the log it creates')),
    { skip: false },
  ).action(async (path: string, options) =>
    setExit(await (await import('./commands/repair.js')).repair(path, options, io)),
  );

  logCommand('backup', (command) =>
    command
      .summary('copy a durable prefix of a log into a new directory, while its writer goes on')
      .description(
        'Copy every durable record of the log into a new directory (a segmented log with the ' +
          'same records at the same LSNs), read-only, while a writer may go on appending. ' +
          'Only what the writer recorded as durable is copied (its durable hint).\n' +
          'The copy is built beside <dir> and renamed into place: after a crash <dir> is ' +
          'absent or complete. <dir> must not exist.',
      )
      .argument('<dir>', 'the new directory of the copy (must not exist)')
      .addOption(
        new Option('--up-to <lsn>', 'copy only the records below this LSN').argParser(parseCount),
      )
      .addOption(modeOption('every file of the copy', "the log's own"))
      .option('--json', 'print one JSON object'),
  ).action(async (path: string, dir: string, options) =>
    setExit(await (await import('./commands/backup.js')).backup(path, dir, options, io)),
  );

  return program;
}

/** Runs `wal` with `argv` (as `process.argv`); resolves with the exit code. */
export async function run(argv: readonly string[], io?: Partial<Io>): Promise<number> {
  const streams: Io = {
    out: io?.out ?? new Output(process.stdout),
    err: io?.err ?? process.stderr,
    stdin: io?.stdin ?? process.stdin,
  };
  let code: number = EXIT.ok;
  const wal = program(streams, (value) => {
    code = value;
  });
  try {
    await wal.parseAsync(argv as string[]);
    // What was written may fail only now (no space left on the device).
    await streams.out.flush();
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (`--help`, `wal help [command]`) and the version exit 0;
      // every usage error was printed already (help shown for one exits 1).
      if (error.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const { message, exitCode } = describeError(error);
    streams.err.write(`wal: ${message}\n`);
    if (process.env.WAL_CLI_DEBUG === '1' && error instanceof Error) {
      streams.err.write(`${error.stack}\n`);
    }
    return exitCode;
  }
}
