import { CommandError, type Hardware } from "./index.ts";

/** Power actions the daemon sends to a BMC. */
export const POWER_ACTIONS = ["on", "off", "status", "reset", "cycle", "soft", "identify", "noidentify"] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/** ipmitool words after `chassis` for each action. */
const CHASSIS_ARGS: Record<PowerAction, readonly string[]> = {
  on: ["power", "on"],
  off: ["power", "off"],
  status: ["power", "status"],
  reset: ["power", "reset"],
  cycle: ["power", "cycle"],
  soft: ["power", "soft"],
  identify: ["identify"],
  noidentify: ["identify", "0"],
};

/** IPMI 2.0 makes suite 3 (HMAC-SHA1, AES-128) mandatory, so it is the fallback for any other suite. */
export const FALLBACK_CIPHER_SUITE = 3;

/** The standard RMCP+ port; `-p` is passed only for other ports. */
const STANDARD_PORT = 623;

/** Everything ipmitool needs to reach one BMC. */
export interface BmcTarget {
  address: string;
  port: number;
  username: string | null;
  /** Sent only through the child's environment (IPMI_PASSWORD with -E). */
  password: string | null;
  /** Suite tried first; never 0, which authenticates nothing. */
  cipherSuite: number;
  privilege: "USER" | "OPERATOR" | "ADMINISTRATOR";
  /** ipmitool -N: seconds to wait for each response. */
  timeoutSeconds: number;
  /** ipmitool -R: retries per request; 0 is sent as 1. */
  retries: number;
}

/** Cause of a failed ipmitool call. */
export type IpmiFailure =
  /** No response from the BMC within ipmitool's timeout and retries, or the process was killed. */
  | "unreachable"
  /** The BMC responded but rejected the user name or password. */
  | "credentials"
  /** The BMC does not offer the requested cipher suite. */
  | "cipher"
  /** A session was opened but the BMC rejected the command. */
  | "rejected";

/** A failed ipmitool call against one BMC, with the redacted argv and the tail of stderr. */
export class IpmiError extends Error {
  readonly failure: IpmiFailure;
  readonly address: string;
  readonly cipherSuite: number;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly stderrTail: string;
  readonly args: readonly string[];

  constructor(failure: IpmiFailure, target: BmcTarget, cipherSuite: number, cause: CommandError) {
    super(describeFailure(failure, target.address, cause), { cause });
    this.name = "IpmiError";
    this.failure = failure;
    this.address = target.address;
    this.cipherSuite = cipherSuite;
    this.exitCode = cause.exitCode;
    this.timedOut = cause.timedOut;
    this.stderrTail = lastLines(cause.stderrTail);
    this.args = cause.args;
  }
}

/** Output of a successful call and the cipher suite that worked. */
export interface IpmiOutput {
  stdout: string;
  cipherSuite: number;
}

/**
 * Builds the ipmitool argv for one action. The password never appears here: with a password,
 * `-E` makes ipmitool read IPMI_PASSWORD from its environment.
 */
export function buildIpmitoolArgs(target: BmcTarget, cipherSuite: number, action: PowerAction): string[] {
  if (!Number.isInteger(cipherSuite) || cipherSuite < 1) throw new RangeError(`Cipher suite ${cipherSuite} is not allowed: suite 0 authenticates nothing`);

  const args = ["-I", "lanplus", "-H", target.address];
  if (target.port !== STANDARD_PORT) args.push("-p", String(target.port));
  if (target.username) args.push("-U", target.username);
  if (target.password) args.push("-E");
  // ipmitool 1.8.19 treats -R 0 as its default retry count (a silent BMC then takes 20 s with -N 1), so 1 is the minimum.
  const retries = Math.max(target.retries, 1);
  args.push("-C", String(cipherSuite), "-L", target.privilege, "-N", String(target.timeoutSeconds), "-R", String(retries));
  // -v adds the reason of a failed session to stderr ("RAKP 2 HMAC is invalid", "Get Auth Capabilities error").
  args.push("-v", "chassis", ...CHASSIS_ARGS[action]);
  return args;
}

/**
 * Runs one power action on a BMC. When the BMC rejects the configured cipher suite, tries suite 3
 * once. Throws `IpmiError` for every failure.
 */
export async function runIpmiPower(hardware: Hardware, target: BmcTarget, action: PowerAction): Promise<IpmiOutput> {
  try {
    return await runWithSuite(hardware, target, target.cipherSuite, action);
  } catch (error) {
    const rejectedSuite = error instanceof IpmiError && error.failure === "cipher";
    if (!rejectedSuite || target.cipherSuite === FALLBACK_CIPHER_SUITE) throw error;
    return runWithSuite(hardware, target, FALLBACK_CIPHER_SUITE, action);
  }
}

async function runWithSuite(hardware: Hardware, target: BmcTarget, cipherSuite: number, action: PowerAction): Promise<IpmiOutput> {
  const env = target.password ? { IPMI_PASSWORD: target.password } : undefined;
  try {
    const result = await hardware.run({
      program: "ipmitool",
      args: buildIpmitoolArgs(target, cipherSuite, action),
      env,
      secretEnv: env ? ["IPMI_PASSWORD"] : undefined,
      timeoutMs: processDeadlineMs(target),
    });
    return { stdout: result.stdout, cipherSuite };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw new IpmiError(classifyFailure(error), target, cipherSuite, error);
  }
}

/**
 * Time after which the ipmitool process is killed. ipmitool stops by itself after its own timeouts
 * (about 2 s for -N 1 -R 1 and 6 s for -N 1 -R 2 with ipmitool 1.8.19), so this only ends hung
 * processes: it allows N x (1 + 2 + ... + R+1) seconds plus 5 s.
 */
export function processDeadlineMs(target: BmcTarget): number {
  const tries = Math.max(target.retries, 1) + 1;
  return (target.timeoutSeconds * (tries * (tries + 1)) / 2 + 5) * 1000;
}

/**
 * Sorts an ipmitool failure by the messages ipmitool 1.8.19 prints with -v. Anything not known as
 * a session failure is a command the BMC rejected.
 */
function classifyFailure(error: CommandError): IpmiFailure {
  const stderr = error.stderrTail;
  if (error.timedOut || error.signal) return "unreachable";
  if (/invalid (authentication|integrity|confidentiality) algorithm|no matching cipher suite|cipher suite .*not (supported|available)/i.test(stderr)) {
    return "cipher";
  }
  if (/RAKP 2 HMAC is invalid|unauthorized name|invalid (user ?name|password)|RAKP \d message indicates an error/i.test(stderr)) return "credentials";
  if (/Get Auth Capabilities error|No response from remote controller|Unable to establish IPMI v2/i.test(stderr)) return "unreachable";
  return "rejected";
}

function describeFailure(failure: IpmiFailure, address: string, cause: CommandError): string {
  const outcome = cause.timedOut ? `was killed after ${cause.durationMs} ms` : `exited with code ${cause.exitCode}`;
  const tail = lastLines(cause.stderrTail);
  const reason = {
    unreachable: `BMC ${address} did not respond`,
    credentials: `BMC ${address} rejected the user name or password`,
    cipher: `BMC ${address} rejected the cipher suite`,
    rejected: `BMC ${address} rejected the command`,
  }[failure];
  return `${reason}: ipmitool ${outcome}${tail ? `: ${tail}` : ""}`;
}

/** Keeps the meaningful end of stderr: the last lines without -v's registry banner. */
function lastLines(stderr: string): string {
  return stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && line !== "Loading IANA PEN Registry...")
    .slice(-3)
    .join(" / ");
}
