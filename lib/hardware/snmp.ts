import { CommandError, type Hardware } from "./index.ts";

/** Address, port and community of one SNMP agent, reached with SNMPv2c. */
export interface SnmpTarget {
  /** IPv4 or IPv6 address or host name. */
  host: string;
  /** UDP port; snmpwalk's default 161 when not given. */
  port?: number;
  /** Read community. It is a secret: it never appears in logs or error messages. */
  community: string;
  /** Seconds snmpwalk waits for each response (`-t`). */
  timeoutSeconds: number;
  /** Times snmpwalk resends an unanswered request (`-r`). */
  retries: number;
}

/** One variable of a walk: its numeric OID with a leading dot, and its value as text. */
export interface SnmpVariable {
  oid: string;
  value: string;
}

/** A walk that failed: the agent did not respond (wrong community, unreachable) or snmpwalk failed. */
export class SnmpError extends Error {
  readonly timedOut: boolean;

  constructor(message: string, timedOut: boolean) {
    super(message);
    this.name = "SnmpError";
    this.timedOut = timedOut;
  }
}

/** Seconds on top of the agent's own timeouts before the whole snmpwalk run is killed. */
const WALK_SLACK_SECONDS = 30;

/** snmpwalk prints these instead of rows for a subtree the agent does not have. */
const NO_ROWS = /^(No Such Object|No Such Instance|No more variables left)/;

/** Returns the agent argument of snmpwalk: `host`, `host:port`, or `udp6:[address]:port` for IPv6. */
export function snmpAgentAddress(target: Pick<SnmpTarget, "host" | "port">): string {
  const port = target.port === undefined ? "" : `:${target.port}`;
  return target.host.includes(":") ? `udp6:[${target.host}]${port}` : `${target.host}${port}`;
}

/**
 * Walks the subtree `rootOid` of an agent with `snmpwalk -v2c -On -Oq` and returns its variables
 * in the agent's order. A subtree the agent does not have returns no variables. Throws
 * `SnmpError` when the agent does not respond or snmpwalk fails. The community travels in argv,
 * hidden from logs and errors by the hardware adapter's redaction and by this function.
 */
export async function snmpWalk(hardware: Hardware, target: SnmpTarget, rootOid: string): Promise<SnmpVariable[]> {
  const agent = snmpAgentAddress(target);
  const args = [
    "-v2c",
    "-c",
    target.community,
    "-On",
    "-Oq",
    "-t",
    String(target.timeoutSeconds),
    "-r",
    String(target.retries),
    agent,
    rootOid,
  ];
  // NOTE: argv is visible to local users in /proc while snmpwalk runs; snmpwalk takes a v2c
  // community only from -c or from a configuration file.
  const timeoutMs = (target.timeoutSeconds * (target.retries + 1) + WALK_SLACK_SECONDS) * 1000;
  let stdout: string;
  try {
    ({ stdout } = await hardware.run({ program: "snmpwalk", args, timeoutMs, redactArgs: [2] }));
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    const timedOut = error.timedOut || /Timeout/i.test(error.stderrTail);
    const hint = timedOut ? " (wrong community, or the agent is unreachable)" : "";
    throw new SnmpError(`SNMP walk of ${rootOid} on ${agent} failed${hint}: ${hideCommunity(error.message, target.community)}`, timedOut);
  }
  return parseWalk(stdout);
}

/** Parses `snmpwalk -On -Oq` output: one `OID value` line per variable, strings in double quotes. */
export function parseWalk(output: string): SnmpVariable[] {
  const variables: SnmpVariable[] = [];
  for (const line of output.split("\n")) {
    const match = /^(\.?[0-9]+(?:\.[0-9]+)*)\s?(.*)$/.exec(line.trimEnd());
    if (!match) continue;
    const value = match[2];
    if (NO_ROWS.test(value)) continue;
    const oid = match[1].startsWith(".") ? match[1] : `.${match[1]}`;
    variables.push({ oid, value: unquote(value) });
  }
  return variables;
}

function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value.slice(1, -1).replace(/\\(.)/g, "$1");
}

function hideCommunity(text: string, community: string): string {
  return community === "" ? text : text.replaceAll(community, "***");
}
