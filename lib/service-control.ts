import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { CommandError, type CommandSpec } from "./hardware/index.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";

const log = logger("services");

/** Time limit of one validator run. */
export const CHECK_TIMEOUT_MS = 30_000;
/** Time limit of one reload or status command, as the original daemon allows. */
const SERVICE_COMMAND_TIMEOUT_MS = 60_000;
/** Validators running at the same time. */
const CHECK_CONCURRENCY = 4;
/** Characters of validator or command output kept in error messages. */
const OUTPUT_TAIL_CHARS = 2000;
/** Folders searched after PATH for validators, which Debian installs in sbin folders. */
const SBIN_FOLDERS = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** A generated file: where it goes, its text, and the command that validates a copy of it. */
export interface GeneratedFile {
  target: string;
  content: string;
  /** Builds the validator command for the temporary copy at `path`. */
  check(path: string): CommandSpec;
}

/** Files that `installCheckedFiles` replaced and files it left alone. */
export interface InstallResult {
  installed: string[];
  unchanged: string[];
}

/** Error for a generated file that its validator rejected. The message contains the validator's output. */
export class ConfigCheckError extends Error {
  readonly target: string;

  constructor(target: string, message: string) {
    super(message);
    this.name = "ConfigCheckError";
    this.target = target;
  }
}

/**
 * Returns the path of `program`: the first executable match on PATH, then in the sbin folders.
 * Returns the bare name when none matches, so the run fails with "could not be started".
 */
export function locateProgram(program: string): string {
  if (program.includes("/")) return program;
  const folders = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...SBIN_FOLDERS];
  for (const folder of folders) {
    const candidate = join(folder, program);
    if (existsSync(candidate)) return candidate;
  }
  return program;
}

/**
 * Writes every changed file to a temporary copy beside its target, runs each copy's validator,
 * and only when all pass renames the copies into place (an atomic rename per file). When a
 * validator fails, every copy is removed, the old files stay, and `ConfigCheckError` carries
 * the validator's output. Files whose text equals the installed file are left alone unless
 * `force` is set.
 */
export async function installCheckedFiles(services: Services, files: GeneratedFile[], force = false): Promise<InstallResult> {
  const result: InstallResult = { installed: [], unchanged: [] };
  const staged: { file: GeneratedFile; temporary: string }[] = [];
  try {
    for (const file of files) {
      if (!force && readTextOrNull(file.target) === file.content) {
        result.unchanged.push(file.target);
        continue;
      }
      mkdirSync(dirname(file.target), { recursive: true });
      const temporary = `${file.target}.${randomBytes(6).toString("hex")}.tmp`;
      writeFileSync(temporary, file.content, { mode: 0o644 });
      staged.push({ file, temporary });
    }
    // Validators run a few at a time: a cluster with many /24 reverse zones has dozens of files.
    let next = 0;
    const worker = async () => {
      while (next < staged.length) {
        const { file, temporary } = staged[next++];
        const spec = file.check(temporary);
        try {
          await services.hardware.run(spec);
        } catch (error) {
          next = staged.length;
          const output = error instanceof CommandError ? commandOutput(error) : (error as Error).message;
          throw new ConfigCheckError(
            file.target,
            `${spec.program} rejected the new ${file.target}, so the previous file stays in place: ${output}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHECK_CONCURRENCY, staged.length) }, worker));
    for (const { file, temporary } of staged) {
      renameSync(temporary, file.target);
      result.installed.push(file.target);
    }
    return result;
  } finally {
    for (const { temporary } of staged) rmSync(temporary, { force: true });
  }
}

/**
 * Returns the useful part of a failed command's output: stderr, or stdout when stderr is empty
 * (named-checkzone reports on stdout). The ISC banner and bug-report text of `dhcpd -t` are removed.
 */
function commandOutput(error: CommandError): string {
  const clean = (text: string) => text.split("\n").filter((line) =>
    line.trim() !== "" &&
    !/^(Internet Systems Consortium|Copyright \d|All rights reserved|For info, please visit|Config file:|Database file:|PID file:)/.test(line) &&
    !/^(If you think you have received|than a configuration issue|bugs on either our web page|before submitting a bug|process and the information we find)/.test(line) &&
    line.trim() !== "exiting.").join("\n");
  const summary = (clean(error.stderrTail) || clean(error.stdout)).slice(-OUTPUT_TAIL_CHARS);
  return summary || error.message;
}

function readTextOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

const loggedProblems = new WeakMap<Services, Map<string, Set<string>>>();

/**
 * Logs the problems of one regeneration as warnings, leaving out those the previous regeneration
 * of the same `kind` already logged, so a problem that persists is logged once and not on every
 * change.
 */
export function logNewProblems(services: Services, kind: string, problems: string[]): void {
  let kinds = loggedProblems.get(services);
  if (kinds === undefined) loggedProblems.set(services, (kinds = new Map()));
  const previous = kinds.get(kind) ?? new Set<string>();
  for (const problem of problems) {
    if (!previous.has(problem)) log.warning("{kind} generation: {problem}", { kind, problem });
  }
  kinds.set(kind, new Set(problems));
}

/** Timing of one requested reload. */
export interface ReloadOutcome {
  unit: string;
  /** Milliseconds the request waited for the cool-down of the previous reload. */
  waitedMs: number;
}

interface ReloadState {
  /** performance.now() when the last reload started, or null before the first. */
  lastStart: number | null;
  /** The reload that waits for the cool-down. Later requests join it. */
  pending: Promise<ReloadOutcome> | null;
  running: Promise<unknown> | null;
}

const reloadStates = new WeakMap<Services, Map<string, ReloadState>>();

/**
 * Reloads `unit` with `<[SERVICES] COMMAND> reload <unit>`, at most once per cool-down period
 * (`[SERVICES] COOLDOWN`). A request inside the period joins one reload that runs when the
 * period ends. Requests that all arrive within one period so give at most two reloads.
 */
export function requestServiceReload(services: Services, unit: string): Promise<ReloadOutcome> {
  let units = reloadStates.get(services);
  if (units === undefined) reloadStates.set(services, (units = new Map()));
  let state = units.get(unit);
  if (state === undefined) units.set(unit, (state = { lastStart: null, pending: null, running: null }));
  if (state.pending !== null) return state.pending;

  const current = state;
  const requested = performance.now();
  const cooldownMs = services.config.services.cooldownSeconds * 1000;
  const earliest = current.lastStart === null ? requested : current.lastStart + cooldownMs;
  const pending = (async () => {
    const delay = earliest - performance.now();
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    await current.running?.catch(() => undefined);
    current.pending = null;
    current.lastStart = performance.now();
    const run = runServiceCommand(services, "reload", unit);
    current.running = run;
    await run;
    return { unit, waitedMs: Math.round(current.lastStart - requested) };
  })();
  current.pending = pending;
  return pending;
}

async function runServiceCommand(services: Services, action: string, unit: string): Promise<void> {
  const command = services.config.services.command;
  if (command === null) {
    log.info("Not running {action} {unit}: [SERVICES] COMMAND is none", { action, unit });
    return;
  }
  const spec: CommandSpec = { program: command, args: [action, unit], timeoutMs: SERVICE_COMMAND_TIMEOUT_MS };
  try {
    await services.hardware.run(spec);
    log.info("Ran {command} {action} {unit}", { command: spec.program, action, unit });
  } catch (error) {
    log.error("{command} {action} {unit} failed: {error}", { command: spec.program, action, unit, error: describeError(error) });
    const output = error instanceof CommandError ? commandOutput(error) : (error as Error).message;
    throw new Error(`${action} of ${unit} failed: ${output}`);
  }
}

/** Services that `/monitor/service/<name>` reports on. */
export type MonitoredService = "dhcp" | "dns" | "luna2";

/** Result of a status check, worded as the original daemon words it. */
export interface ServiceStatus {
  /** HTTP status: 200 running, 500 not running, 503 the state could not be read. */
  status: 200 | 500 | 503;
  text: string;
}

/**
 * Checks one service. DHCP and DNS run `<[SERVICES] COMMAND> is-active <unit>`: exit 0 is
 * "OK, running", another exit code "FAIL, not running", and a command that cannot be started or
 * times out gives 503. The daemon itself is running when it can query its database.
 */
export async function getServiceStatus(services: Services, name: MonitoredService): Promise<ServiceStatus> {
  if (name === "luna2") {
    try {
      await services.db.client.execute("SELECT 1");
      return { status: 200, text: "OK, running" };
    } catch (error) {
      log.error("Status check of the daemon's database failed: {error}", { error: describeError(error) });
      return { status: 503, text: "FAIL, database unavailable" };
    }
  }

  const unit = name === "dhcp" ? services.config.services.dhcp : services.config.services.dns;
  const command = services.config.services.command;
  if (command === null) return { status: 503, text: `FAIL, no service command: [SERVICES] COMMAND is none` };
  const spec: CommandSpec = { program: command, args: ["is-active", unit], timeoutMs: SERVICE_COMMAND_TIMEOUT_MS };
  try {
    await services.hardware.run(spec);
    return { status: 200, text: "OK, running" };
  } catch (error) {
    if (error instanceof CommandError && error.exitCode !== null && error.exitCode > 0 && !error.timedOut) {
      log.warning("Service {unit} is not running: {state}", { unit, state: error.stdout.trim() });
      return { status: 500, text: "FAIL, not running" };
    }
    log.error("Cannot read the state of {unit}: {error}", { unit, error: describeError(error) });
    return { status: 503, text: `FAIL, cannot read the state of ${unit}` };
  }
}
