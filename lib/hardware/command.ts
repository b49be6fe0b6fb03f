import { spawn } from "node:child_process";

/** One external program run: argv only, never a shell. */
export interface CommandSpec {
  /** Program name or path; looked up on PATH like execvp. */
  program: string;
  args: readonly string[];
  /** Extra environment variables; secrets travel here, never in `args`. */
  env?: Record<string, string>;
  /** Names in `env` whose values must never be logged or shown. */
  secretEnv?: readonly string[];
  timeoutMs: number;
  stdin?: string;
  cwd?: string;
  /** Argument positions to hide in logs and errors, such as an SNMP community. */
  redactArgs?: readonly number[];
}

/** Result of a finished program. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const STDERR_TAIL_CHARS = 2000;
const MAX_OUTPUT_CHARS = 16 * 1024 * 1024;

/** A program that could not be started, exited non-zero, was killed or timed out. */
export class CommandError extends Error {
  readonly program: string;
  /** argv with redacted positions replaced by `***`. */
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly stderrTail: string;
  readonly stdout: string;

  constructor(fields: {
    program: string;
    args: readonly string[];
    exitCode: number | null;
    signal: string | null;
    timedOut: boolean;
    durationMs: number;
    stderr: string;
    stdout: string;
    spawnError?: string;
  }) {
    const outcome = fields.spawnError
      ? `could not be started: ${fields.spawnError}`
      : fields.timedOut
        ? `timed out after ${fields.durationMs} ms`
        : fields.signal
          ? `was killed by ${fields.signal}`
          : `exited with code ${fields.exitCode}`;
    const tail = fields.stderr.trim().slice(-STDERR_TAIL_CHARS);
    super(`${fields.program} ${outcome}${tail ? `: ${tail}` : ""}`);
    this.name = "CommandError";
    this.program = fields.program;
    this.args = fields.args;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
    this.timedOut = fields.timedOut;
    this.durationMs = fields.durationMs;
    this.stderrTail = tail;
    this.stdout = fields.stdout;
  }
}

/** Returns argv with the positions in `redact` replaced, for logs and errors. */
export function redactedArgs(spec: CommandSpec): string[] {
  return spec.args.map((arg, index) => (spec.redactArgs?.includes(index) ? "***" : arg));
}

/**
 * Runs a program without a shell and collects its output. Resolves with the result on exit
 * code 0; rejects with `CommandError` otherwise. On timeout the process gets SIGTERM, then SIGKILL.
 */
export function runCommand(spec: CommandSpec): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(spec.program, [...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ["pipe", "pipe", "pipe"],
      shell: false,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let spawnError: string | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 2000).unref();
    }, spec.timeoutMs);

    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < MAX_OUTPUT_CHARS) stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_OUTPUT_CHARS);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(spec.stdin ?? "");
    child.on("error", (error) => {
      spawnError = error.message;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const durationMs = Math.round(performance.now() - started);
      if (code === 0 && !timedOut && !spawnError) {
        resolve({ exitCode: 0, stdout, stderr, durationMs });
        return;
      }
      reject(
        new CommandError({
          program: spec.program,
          args: redactedArgs(spec),
          exitCode: code,
          signal,
          timedOut,
          durationMs,
          stderr,
          stdout,
          spawnError,
        }),
      );
    });
  });
}
