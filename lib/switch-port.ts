import { and, eq, isNotNull } from "drizzle-orm";
import type { Orm, Transaction } from "./db/database.ts";
import { ipAddress, node, switchDevice } from "./db/schema/index.ts";
import { conflict, invalid } from "./errors.ts";
import { type SnmpTarget, snmpAgentAddress, snmpWalk } from "./hardware/snmp.ts";
import type { Hardware } from "./hardware/index.ts";
import { logger } from "./log.ts";
import type { Services } from "./services.ts";

/** Q-BRIDGE-MIB dot1qTpFdbPort, indexed by filtering database id and the 6 MAC octets. */
export const Q_BRIDGE_FDB_PORT_OID = ".1.3.6.1.2.1.17.7.1.2.2.1.2";
/** BRIDGE-MIB dot1dTpFdbPort, indexed by the 6 MAC octets; for switches without Q-BRIDGE. */
export const BRIDGE_FDB_PORT_OID = ".1.3.6.1.2.1.17.4.3.1.2";
/** BRIDGE-MIB dot1dBasePortIfIndex: bridge port number to IF-MIB ifIndex. */
export const BASE_PORT_IF_INDEX_OID = ".1.3.6.1.2.1.17.1.4.1.2";
/** IF-MIB ifName, indexed by ifIndex. */
export const IF_NAME_OID = ".1.3.6.1.2.1.31.1.1.1.1";

/**
 * Most distinct MAC addresses a port may have learned and still count as one node's port. A
 * node's port normally carries its NIC and, with a shared BMC (NC-SI), the BMC as well. More
 * MACs mean another switch, a hub or a hypervisor behind the port, where a MAC does not identify
 * the port.
 */
export const MAX_MACS_ON_NODE_PORT = 2;

/** Switches walked at the same time. */
const PARALLEL_SWITCHES = 8;

/** Default seconds per SNMP request and number of resends: a switch that does not respond costs about 4 s. */
const DEFAULT_TIMEOUT_SECONDS = 2;
const DEFAULT_RETRIES = 1;

const log = logger("switch-port");

/** Location of a MAC address: switch name, interface name (ifName) and bridge port number. */
export interface SwitchPortMatch {
  switch: string;
  /** ifName of the port; the bridge port number as text when the switch has no ifName row. */
  port: string;
  /** BRIDGE-MIB port number, the value of the forwarding database entry. */
  portNumber: number;
}

/** SNMP settings for one lookup. */
export interface SwitchPortOptions {
  timeoutSeconds?: number;
  retries?: number;
  /** UDP port of every switch's agent; 161 when not given. */
  udpPort?: number;
}

interface SwitchRow {
  name: string;
  read: string | null;
  uplinkports: string | null;
  ipaddress: string | null;
  ipaddressIpv6: string | null;
}

interface FdbEntry {
  mac: string;
  bridgePort: number;
}

const MAC_ADDRESS = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/** Returns the MAC in lower-case colon form, or throws `invalid` naming it. */
function normalizeMac(mac: string): string {
  if (!MAC_ADDRESS.test(mac)) throw invalid(`Invalid request: MAC address "${mac}" is invalid: use six pairs of hex digits separated by ':' or '-'`);
  return mac.toLowerCase().replaceAll("-", ":");
}

/**
 * True when two port references name the same port: numbers compare as numbers ("05" is 5),
 * names compare without regard to case.
 */
function samePort(left: string | number, right: string | number): boolean {
  const a = String(left).trim();
  const b = String(right).trim();
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(a) === Number(b);
  return a.toLowerCase() === b.toLowerCase();
}

function splitPorts(list: string | null): string[] {
  return (list ?? "").split(/[\s,]+/).filter((port) => port !== "");
}

/** Returns the numbers after `root` in `oid`, or null when `oid` is not inside `root`. */
function oidSuffix(oid: string, root: string): number[] | null {
  if (!oid.startsWith(`${root}.`)) return null;
  return oid.slice(root.length + 1).split(".").map(Number);
}

/**
 * Reads a switch's forwarding database from Q-BRIDGE dot1qTpFdbPort, or from BRIDGE
 * dot1dTpFdbPort when the Q-BRIDGE table has no rows. Entries on port 0 (learned, but on no
 * bridge port, such as the switch's own MAC) are left out.
 */
async function readForwardingDatabase(hardware: Hardware, target: SnmpTarget): Promise<FdbEntry[]> {
  let root = Q_BRIDGE_FDB_PORT_OID;
  let variables = await snmpWalk(hardware, target, root);
  if (variables.length === 0) {
    root = BRIDGE_FDB_PORT_OID;
    variables = await snmpWalk(hardware, target, root);
  }
  const entries: FdbEntry[] = [];
  for (const variable of variables) {
    const suffix = oidSuffix(variable.oid, root);
    const bridgePort = Number(variable.value);
    if (!suffix || suffix.length < 6 || !Number.isInteger(bridgePort) || bridgePort <= 0) continue;
    const octets = suffix.slice(-6);
    if (octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) continue;
    entries.push({ mac: octets.map((octet) => octet.toString(16).padStart(2, "0")).join(":"), bridgePort });
  }
  return entries;
}

/** Reads the ifName of a bridge port through dot1dBasePortIfIndex; null when the switch lacks either row. */
async function readPortName(hardware: Hardware, target: SnmpTarget, bridgePort: number): Promise<string | null> {
  const ifIndexRows = await snmpWalk(hardware, target, `${BASE_PORT_IF_INDEX_OID}.${bridgePort}`);
  const ifIndex = ifIndexRows.find((row) => row.oid === `${BASE_PORT_IF_INDEX_OID}.${bridgePort}`)?.value;
  if (ifIndex === undefined || !/^\d+$/.test(ifIndex)) return null;
  const nameRows = await snmpWalk(hardware, target, `${IF_NAME_OID}.${ifIndex}`);
  return nameRows.find((row) => row.oid === `${IF_NAME_OID}.${ifIndex}`)?.value ?? null;
}

/** A port of one switch where the MAC was seen, with the number of MACs that port learned. */
interface Candidate extends SwitchPortMatch {
  macCount: number;
}

/**
 * Looks for `mac` on one switch. Returns the node ports (not uplinks, at most
 * MAX_MACS_ON_NODE_PORT MACs) where the switch learned it.
 */
async function searchSwitch(hardware: Hardware, row: SwitchRow, target: SnmpTarget, mac: string): Promise<Candidate[]> {
  const entries = await readForwardingDatabase(hardware, target);
  const macsByPort = new Map<number, Set<string>>();
  for (const entry of entries) {
    let macs = macsByPort.get(entry.bridgePort);
    if (!macs) macsByPort.set(entry.bridgePort, (macs = new Set()));
    macs.add(entry.mac);
  }
  const uplinks = splitPorts(row.uplinkports);
  const ports = [...new Set(entries.filter((entry) => entry.mac === mac).map((entry) => entry.bridgePort))];

  const candidates: Candidate[] = [];
  for (const bridgePort of ports) {
    const macCount = macsByPort.get(bridgePort)!.size;
    if (macCount > MAX_MACS_ON_NODE_PORT) continue;
    if (uplinks.some((uplink) => samePort(uplink, bridgePort))) continue;
    const name = (await readPortName(hardware, target, bridgePort)) ?? String(bridgePort);
    if (uplinks.some((uplink) => samePort(uplink, name))) continue;
    candidates.push({ switch: row.name, port: name, portNumber: bridgePort, macCount });
  }
  return candidates;
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    results.push(...(await Promise.all(items.slice(start, start + size).map(fn))));
  }
  return results;
}

/**
 * Finds the switch port where `mac` is connected by walking the forwarding database of every
 * switch that has an address, over SNMPv2c with the switch's read community. Uplink ports
 * (switch.uplinkports, names or numbers) and ports with more than MAX_MACS_ON_NODE_PORT MACs never
 * match. Returns null when no switch has the MAC on a node port. A switch that does not respond
 * is logged and skipped. When several switches match, the port with the fewest MACs wins, then
 * the first switch by name, and a warning is logged. Throws `invalid` for a malformed MAC.
 */
export async function findSwitchPort(
  services: Pick<Services, "db" | "hardware">,
  mac: string,
  options: SwitchPortOptions = {},
): Promise<SwitchPortMatch | null> {
  const normalizedMac = normalizeMac(mac);
  const rows: SwitchRow[] = await services.db.orm
    .select({
      name: switchDevice.name,
      read: switchDevice.read,
      uplinkports: switchDevice.uplinkports,
      ipaddress: ipAddress.ipaddress,
      ipaddressIpv6: ipAddress.ipaddress_ipv6,
    })
    .from(switchDevice)
    .innerJoin(ipAddress, eq(ipAddress.switch_id, switchDevice.id))
    .orderBy(switchDevice.name);

  const found = await inBatches(rows, PARALLEL_SWITCHES, async (row) => {
    const host = row.ipaddress ?? row.ipaddressIpv6;
    if (host === null) return [];
    const target: SnmpTarget = {
      host,
      port: options.udpPort,
      // An empty read community falls back to "public", the default a new switch gets.
      community: row.read || "public",
      timeoutSeconds: options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
      retries: options.retries ?? DEFAULT_RETRIES,
    };
    try {
      return await searchSwitch(services.hardware, row, target, normalizedMac);
    } catch (error) {
      log.warning("Cannot read the forwarding database of switch {switch} at {agent}: {error}", {
        switch: row.name,
        agent: snmpAgentAddress(target),
        error: (error as Error).message,
      });
      return [];
    }
  });

  const candidates = found.flat().sort((a, b) => a.macCount - b.macCount || a.switch.localeCompare(b.switch));
  if (candidates.length === 0) return null;
  if (candidates.length > 1) {
    log.warning("MAC {mac} is on several node ports: {ports}; using {switch} port {port}", {
      mac: normalizedMac,
      ports: candidates.map((item) => `${item.switch}/${item.port}`).join(", "),
      switch: candidates[0].switch,
      port: candidates[0].port,
    });
  }
  const best = candidates[0];
  return { switch: best.switch, port: best.port, portNumber: best.portNumber };
}

/**
 * Returns the node assigned to a port of `switchName` (node.switch_id and node.switchport), or
 * null when none is. `port` takes one or more references to the same port, such as the ifName
 * and the bridge port number of a SwitchPortMatch. Numbers compare as numbers, and names compare
 * without regard to case. Throws `conflict` when several nodes claim the port.
 */
export async function findNodeBySwitchPort(
  db: Orm | Transaction,
  switchName: string,
  port: string | number | readonly (string | number)[],
): Promise<{ id: number; name: string } | null> {
  const references = Array.isArray(port) ? port : [port];
  const nodes = await db
    .select({ id: node.id, name: node.name, switchport: node.switchport })
    .from(node)
    .innerJoin(switchDevice, eq(switchDevice.id, node.switch_id))
    .where(and(eq(switchDevice.name, switchName), isNotNull(node.switchport)))
    .orderBy(node.name);
  const matches = nodes.filter((item) => references.some((reference) => samePort(item.switchport!, reference)));
  if (matches.length > 1) {
    throw conflict(`Switch "${switchName}" port "${references[0]}" is assigned to several nodes: ${matches.map((item) => item.name).join(", ")}`);
  }
  return matches[0] ? { id: matches[0].id, name: matches[0].name } : null;
}

/**
 * Returns the id of the node assigned to the switch port where `mac` is connected, or null when
 * the MAC is on no node port or no node is assigned to that port. Its shape fits the switch-port
 * locator that node discovery takes. Throws `conflict` when several nodes claim the port.
 */
export async function locateNodeBySwitchPort(
  services: Pick<Services, "db" | "hardware">,
  mac: string,
  options: SwitchPortOptions = {},
): Promise<number | null> {
  const match = await findSwitchPort(services, mac, options);
  if (!match) return null;
  const found = await findNodeBySwitchPort(services.db.orm, match.switch, [match.port, match.portNumber]);
  return found?.id ?? null;
}
