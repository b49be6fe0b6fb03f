import { type CommandResult, type CommandSpec, runCommand } from "./command.ts";

/**
 * The daemon's only way to run external tools (ipmitool, snmpwalk, tar, rsync, validators).
 * The app receives it as an argument, so route tests can pass a recording fake.
 */
export interface Hardware {
  run(spec: CommandSpec): Promise<CommandResult>;
}

/** Runs real programs on this machine. */
export const systemHardware: Hardware = { run: runCommand };

export type { CommandResult, CommandSpec } from "./command.ts";
export { CommandError } from "./command.ts";
