import { spawn } from 'node:child_process';

/** What a finished child process printed. */
export interface Output {
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Working directory of the child. */
  cwd: string;
  /** Variables added to the inherited environment (which is kept whole). */
  env?: Record<string, string>;
}

/**
 * Runs a command without a shell, with the environment of this process kept
 * whole (the registry is reached through it), and resolves with its output.
 * Rejects, with the command line and everything it printed, when it cannot be
 * started or exits with a non-zero status. Asynchronous on purpose: a registry
 * served by this process keeps answering while the child runs.
 */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const how = signal === null ? `exit status ${code}` : `signal ${signal}`;
      reject(
        new Error(
          `\`${[command, ...args].join(' ')}\` in ${options.cwd} ended with ${how}\n${stdout}${stderr}`,
        ),
      );
    });
  });
}
