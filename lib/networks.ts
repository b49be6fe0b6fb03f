import { and, eq, inArray, lte, ne, sql } from "drizzle-orm";
import { controllerKey, listControllers } from "./cluster.ts";
import type { Database, Transaction } from "./db/database.ts";
import { groupInterface, ipAddress, network, nodeGroup, reservedIpAddress } from "./db/schema/index.ts";
import { conflict, inUse, invalid, notFound } from "./errors.ts";
import { DOMAIN_NAME, nameProblem } from "./fields.ts";
import { bigIntToIp, canonicalIp, type Cidr, cidrBounds, cidrContains, formatCidr, hostBounds, type IpFamily, ipFamily, ipToBigInt, parseCidr } from "./ip.ts";
import { dhcpRange, findNetwork, firstFreeAddress, listNetworkAddresses, type NetworkAddress, networkCidr, type NetworkRow } from "./ipam.ts";
import { fitDhcpRange, planAddresses } from "./network-renumber.ts";

/** Network columns without the id. */
export type NetworkValues = Omit<NetworkRow, "id">;

/**
 * A parsed network create, update or clone request. `undefined` leaves a field as it is, `null`
 * clears it. Values of `network`, `gateway`, `nameserver_ip` and `dhcp_range_*` that are IPv6
 * go to the `_ipv6` columns, so one request can make a network dual-stack.
 */
export interface NetworkInput {
  name?: string;
  newnetname?: string;
  /** CIDR text of either family. */
  network?: string;
  network_ipv6?: string;
  gateway?: string | null;
  gateway_ipv6?: string | null;
  gateway_metric?: number | null;
  /** Comma-separated addresses of either family. */
  nameserver_ip?: string | null;
  nameserver_ip_ipv6?: string | null;
  ntp_server?: string | null;
  dhcp?: boolean | null;
  dhcp_nodes_in_pool?: boolean | null;
  dhcp_nodes_only?: boolean | null;
  dhcp_range_begin?: string | null;
  dhcp_range_end?: string | null;
  dhcp_range_begin_ipv6?: string | null;
  dhcp_range_end_ipv6?: string | null;
  dhcp_relay?: string | null;
  zone?: "internal" | "external";
  shared?: string | null;
  type?: string | null;
  non_authoritative?: boolean | null;
  comment?: string | null;
  /** Removes the IPv4 or IPv6 part, including every address of that family in the network. */
  clear?: "ipv4" | "ipv6";
  /** New controller addresses as sent, keyed `controller` for the beacon or by hostname with '-' as '_'. */
  controllerAddresses?: Record<string, unknown>;
}

const FAMILY_COLUMNS = {
  4: { network: "network", subnet: "subnet", gateway: "gateway", nameserver: "nameserver_ip", begin: "dhcp_range_begin", end: "dhcp_range_end" },
  6: {
    network: "network_ipv6",
    subnet: "subnet_ipv6",
    gateway: "gateway_ipv6",
    nameserver: "nameserver_ip_ipv6",
    begin: "dhcp_range_begin_ipv6",
    end: "dhcp_range_end_ipv6",
  },
} as const;

const FAMILIES: IpFamily[] = [4, 6];

/** Rejects a network name from a URL or body that is not a DNS name of at most 253 characters. */
export function checkNetworkName(name: string, field = "Network name"): void {
  const problem = nameProblem(field, name, DOMAIN_NAME, 253);
  if (problem !== null) throw invalid(`Invalid request: ${problem}`);
}

/** Loads a network by name or throws 404. */
export async function requireNetwork(db: Parameters<typeof findNetwork>[0], name: string): Promise<NetworkRow> {
  const row = await findNetwork(db, name);
  if (row === null) throw notFound(`Network "${name}" does not exist`);
  return row;
}

/**
 * Creates the network `name`, or updates it when it exists, in one transaction. An update that
 * changes the network address, the prefix or the DHCP range moves every address in the network
 * that no longer fits. If any address cannot move, nothing is written.
 */
export async function saveNetwork(db: Database, name: string, input: NetworkInput, now: number): Promise<"created" | "updated"> {
  checkNetworkName(name);
  if (input.name !== undefined && input.name !== name) {
    throw invalid(`Invalid request: name "${input.name}" differs from the network "${name}" in the URL: send newnetname to rename`);
  }
  if (!hasFields(input)) throw invalid("Invalid request: no fields to set");

  return db.write(async (tx) => {
    const current = await findNetwork(tx, name);
    if (current === null) {
      if (input.newnetname !== undefined) throw notFound(`Network "${name}" does not exist, so it cannot be renamed`);
      await writeNetwork(tx, null, blankNetwork(name), input, { template: null, now });
      return "created";
    }
    await writeNetwork(tx, current, current, input, { template: null, now });
    return "updated";
  });
}

/**
 * Creates `input.newnetname` with the settings of network `name`, overridden by `input`. The
 * request must give the new network address, because two networks may not overlap. The
 * gateway and DHCP range keep their offsets in the new network.
 */
export async function cloneNetwork(db: Database, name: string, input: NetworkInput, now: number): Promise<string> {
  checkNetworkName(name);
  const newName = input.newnetname;
  if (newName === undefined) throw invalid("Invalid request: newnetname is required to clone a network");
  if (input.network === undefined && input.network_ipv6 === undefined) {
    throw invalid("Invalid request: network is required to clone a network, because two networks may not overlap");
  }
  if (input.name !== undefined && input.name !== name) {
    throw invalid(`Invalid request: name "${input.name}" differs from the network "${name}" in the URL`);
  }

  return db.write(async (tx) => {
    const source = await requireNetwork(tx, name);
    if ((await findNetwork(tx, newName)) !== null) throw conflict(`Network "${newName}" already exists`);
    const { id: _id, ...settings } = source;
    const { newnetname: _newName, name: _name, ...changes } = input;
    await writeNetwork(tx, null, { ...settings, name: newName }, changes, { template: source, now });
    return newName;
  });
}

/** Deletes a network that nothing uses; otherwise throws 409 naming the users. */
export async function deleteNetwork(db: Database, name: string): Promise<void> {
  checkNetworkName(name);
  await db.write(async (tx) => {
    const row = await requireNetwork(tx, name);
    const users = await describeUsers(tx, row);
    if (users.length > 0) throw inUse(`Cannot delete network "${name}": it is still used by ${users.join("; ")}`);

    // A relay only makes sense on a network that shares another one.
    await tx.update(network).set({ shared: null, dhcp_relay: null }).where(eq(network.shared, name));
    await tx.delete(network).where(eq(network.id, row.id));
  });
}

/**
 * Returns the lowest free address of the network (IPv4 when it has IPv4) and reserves it until
 * `now + seconds`, so the next call and every allocation skip it. Throws 404 when none is free.
 */
export async function reserveNextFreeAddress(db: Database, name: string, now: number, seconds: number): Promise<string> {
  checkNetworkName(name);
  return db.write(async (tx) => {
    const row = await requireNetwork(tx, name);
    // Expired rows would block a new reservation of the same address through the unique index.
    await tx.delete(reservedIpAddress).where(and(eq(reservedIpAddress.network_id, row.id), lte(reservedIpAddress.expires_at, now)));
    const family: IpFamily = row.network !== null ? 4 : 6;
    const address = await firstFreeAddress(tx, row, family, now);
    if (address === null) throw notFound(`Network "${name}" has no free address`);
    await tx.insert(reservedIpAddress).values({ network_id: row.id, ipaddress: address, expires_at: now + seconds * 1000 });
    return address;
  });
}

function hasFields(input: NetworkInput): boolean {
  const { controllerAddresses, ...fields } = input;
  return Object.keys(fields).length > 0 || Object.keys(controllerAddresses ?? {}).length > 0;
}

function blankNetwork(name: string): NetworkValues {
  return {
    name,
    network: null,
    subnet: null,
    network_ipv6: null,
    subnet_ipv6: null,
    gateway: null,
    gateway_ipv6: null,
    gateway_metric: null,
    nameserver_ip: null,
    nameserver_ip_ipv6: null,
    ntp_server: null,
    dhcp: false,
    dhcp_nodes_in_pool: false,
    dhcp_nodes_only: false,
    dhcp_range_begin: null,
    dhcp_range_end: null,
    dhcp_range_begin_ipv6: null,
    dhcp_range_end_ipv6: null,
    dhcp_relay: null,
    zone: "internal",
    shared: null,
    type: "ethernet",
    non_authoritative: false,
    comment: null,
  };
}

interface WriteOptions {
  /** Network that a clone copies. Its gateway and DHCP range move by offset into the clone. */
  template: NetworkRow | null;
  now: number;
}

/**
 * Validates `input` applied to `base` and writes the result: the network row, moved addresses,
 * dropped reservations and renamed `shared` references. `current` is null for a new network.
 */
async function writeNetwork(tx: Transaction, current: NetworkRow | null, base: NetworkValues, input: NetworkInput, options: WriteOptions): Promise<void> {
  const { next, sentFamilies } = mergeInput(base, input);
  const before = current ?? options.template;
  if (input.newnetname !== undefined && input.newnetname !== base.name) next.name = input.newnetname;

  applyClear(next, input, sentFamilies);
  if (!hasFamily(next, 4) && !hasFamily(next, 6)) {
    throw invalid("Invalid request: network is required for a new network, in CIDR notation such as 10.141.0.0/16");
  }
  applyDhcpFlags(next, input);
  moveWithNetwork(next, before, input, options.template !== null);
  checkDhcpRanges(next);
  checkGateways(next, input, before);

  if (next.dhcp_relay !== null && next.shared === null) {
    throw invalid("Invalid request: dhcp_relay can only be set on a shared network: set shared to the network this one shares");
  }
  await checkNames(tx, current, next);
  await checkOverlap(tx, current, next, before);

  const holders = current === null ? [] : await listNetworkAddresses(tx, current.id);
  const controllerAddresses = await resolveControllerAddresses(tx, next.name, holders, input.controllerAddresses ?? {});
  const id = current?.id ?? 0;
  const changes = new Map<IpFamily, Map<number, string | null>>();
  if (current !== null) {
    for (const family of FAMILIES) {
      const plan = await planFamily(tx, family, current, { ...next, id }, holders, controllerAddresses, options.now);
      if (plan !== null) changes.set(family, plan);
    }
  }

  if (current === null) {
    await tx.insert(network).values(next);
    return;
  }
  await tx.update(network).set(next).where(eq(network.id, current.id));
  for (const [family, plan] of changes) await moveAddresses(tx, family, plan);
  await dropStaleReservations(tx, { ...next, id: current.id });
  if (next.name !== current.name) await tx.update(network).set({ shared: next.name }).where(eq(network.shared, current.name));
}

/** Copies the request onto the row, sending each address to the column of its family. */
function mergeInput(base: NetworkValues, input: NetworkInput): { next: NetworkValues; sentFamilies: Set<IpFamily> } {
  const next: NetworkValues = { ...base };
  const sentFamilies = new Set<IpFamily>();
  const set = (column: keyof NetworkValues, value: unknown) => ((next as Record<string, unknown>)[column] = value);

  for (const key of ["network", "network_ipv6"] as const) {
    const value = input[key];
    if (value === undefined) continue;
    const cidr = parseCidr(value)!;
    if (key === "network_ipv6" && cidr.family !== 6) throw invalid(`Invalid request: network_ipv6 "${value}" is not an IPv6 network`);
    set(FAMILY_COLUMNS[cidr.family].network, cidr.network);
    set(FAMILY_COLUMNS[cidr.family].subnet, cidr.prefix);
    sentFamilies.add(cidr.family);
  }

  const single = [
    ["gateway", "gateway"],
    ["dhcp_range_begin", "begin"],
    ["dhcp_range_end", "end"],
  ] as const;
  for (const [key, column] of single) {
    for (const forced of [null, 6] as const) {
      const field = forced === null ? key : (`${key}_ipv6` as const);
      const value = input[field];
      if (value === undefined) continue;
      if (value === null) {
        set(FAMILY_COLUMNS[forced ?? 4][column], null);
        continue;
      }
      const family = ipFamily(value)!;
      if (forced === 6 && family !== 6) throw invalid(`Invalid request: ${field} "${value}" is not an IPv6 address`);
      set(FAMILY_COLUMNS[family][column], value);
      sentFamilies.add(family);
    }
  }

  if (input.nameserver_ip !== undefined) {
    if (input.nameserver_ip === null) next.nameserver_ip = null;
    else {
      const items = input.nameserver_ip.split(",");
      const ipv4 = items.filter((item) => ipFamily(item) === 4);
      const ipv6 = items.filter((item) => ipFamily(item) === 6);
      if (ipv4.length > 0) next.nameserver_ip = ipv4.join(",");
      if (ipv6.length > 0) next.nameserver_ip_ipv6 = ipv6.join(",");
    }
  }
  if (input.nameserver_ip_ipv6 !== undefined) {
    const wrong = input.nameserver_ip_ipv6?.split(",").find((item) => ipFamily(item) !== 6);
    if (wrong !== undefined) throw invalid(`Invalid request: nameserver_ip_ipv6 "${wrong}" is not an IPv6 address`);
    next.nameserver_ip_ipv6 = input.nameserver_ip_ipv6;
  }

  for (const key of ["gateway_metric", "ntp_server", "dhcp_relay", "zone", "shared", "comment"] as const) {
    if (input[key] !== undefined) set(key, input[key]);
  }
  if (input.type !== undefined) next.type = input.type ?? "ethernet";
  for (const key of ["dhcp", "dhcp_nodes_in_pool", "dhcp_nodes_only", "non_authoritative"] as const) {
    if (input[key] !== undefined) next[key] = input[key] ?? false;
  }
  return { next, sentFamilies };
}

function hasFamily(row: NetworkValues, family: IpFamily): boolean {
  return row[FAMILY_COLUMNS[family].network] !== null;
}

function cidrOf(row: NetworkValues, family: IpFamily): Cidr | null {
  return networkCidr({ ...row, id: 0 }, family);
}

function sameCidr(left: Cidr | null, right: Cidr | null): boolean {
  return left?.network === right?.network && left?.prefix === right?.prefix;
}

function applyClear(next: NetworkValues, input: NetworkInput, sentFamilies: Set<IpFamily>): void {
  if (input.clear === undefined) return;
  const family: IpFamily = input.clear === "ipv4" ? 4 : 6;
  const other: IpFamily = family === 4 ? 6 : 4;
  if (sentFamilies.has(family)) {
    throw invalid(`Invalid request: clear "${input.clear}" cannot be combined with IPv${family} values in the same request`);
  }
  if (!hasFamily(next, other)) {
    throw invalid(`Invalid request: clear "${input.clear}" needs an IPv${other} network to remain: set ${other === 6 ? "network_ipv6" : "network"} first`);
  }
  const columns = FAMILY_COLUMNS[family];
  for (const column of [columns.network, columns.subnet, columns.gateway, columns.begin, columns.end] as const) {
    (next as Record<string, unknown>)[column] = null;
  }
}

function applyDhcpFlags(next: NetworkValues, input: NetworkInput): void {
  if (next.dhcp_nodes_only && next.dhcp_nodes_in_pool) {
    if (input.dhcp_nodes_only && input.dhcp_nodes_in_pool) {
      throw invalid("Invalid request: dhcp_nodes_only and dhcp_nodes_in_pool are mutually exclusive");
    }
    const enabled = input.dhcp_nodes_only ? "dhcp_nodes_in_pool" : "dhcp_nodes_only";
    const requested = input.dhcp_nodes_only ? "dhcp_nodes_only" : "dhcp_nodes_in_pool";
    throw invalid(`Invalid request: ${enabled} is on and excludes ${requested}: turn ${enabled} off first`);
  }
  let mode: string | null = null;
  if (next.dhcp_nodes_only) mode = "dhcp_nodes_only";
  if (next.dhcp_nodes_in_pool) mode = "dhcp_nodes_in_pool";
  // NOTE: turning dhcp_nodes_in_pool off does not give static addresses to interfaces that had none.
  if (mode !== null && !next.dhcp) {
    if (input.dhcp !== undefined) throw invalid(`Invalid request: dhcp cannot be off while ${mode} is on: turn ${mode} off in the same request`);
    next.dhcp = true;
  }
  if (next.dhcp_nodes_only) {
    const sent = (["dhcp_range_begin", "dhcp_range_end", "dhcp_range_begin_ipv6", "dhcp_range_end_ipv6"] as const).find((key) => input[key]);
    if (sent !== undefined) throw invalid(`Invalid request: ${sent} cannot be set while dhcp_nodes_only is on, because DHCP then serves known nodes only`);
    next.dhcp_range_begin = next.dhcp_range_end = next.dhcp_range_begin_ipv6 = next.dhcp_range_end_ipv6 = null;
  }
}

/** Moves DHCP ranges that the request did not set into a changed network; for a clone, the gateway too. */
function moveWithNetwork(next: NetworkValues, before: NetworkRow | null, input: NetworkInput, isClone: boolean): void {
  if (before === null) return;
  for (const family of FAMILIES) {
    const columns = FAMILY_COLUMNS[family];
    const oldCidr = networkCidr(before, family);
    const newCidr = cidrOf(next, family);
    if (newCidr === null || sameCidr(oldCidr, newCidr)) continue;

    const rangeSent = isSent(input, "dhcp_range_begin", family) || isSent(input, "dhcp_range_end", family);
    const begin = next[columns.begin];
    const end = next[columns.end];
    if (!rangeSent && begin !== null && end !== null && ipFamily(begin) === family) {
      const moved = fitDhcpRange({ begin, end }, oldCidr, newCidr, next.dhcp_nodes_in_pool);
      next[columns.begin] = moved?.begin ?? null;
      next[columns.end] = moved?.end ?? null;
    }

    const gateway = next[columns.gateway];
    if (isClone && !isSent(input, "gateway", family) && gateway !== null && oldCidr !== null) {
      const moved = cidrBounds(newCidr).first + (ipToBigInt(gateway) - cidrBounds(oldCidr).first);
      const bounds = hostBounds(newCidr);
      next[columns.gateway] = moved >= bounds.first && moved <= bounds.last ? bigIntToIp(moved, family) : null;
    }
  }
}

/** True when the request sets the `family` column of `key`: through `key` itself (by the value's family, `""` meaning IPv4) or through `key_ipv6`. */
function isSent(input: NetworkInput, key: "gateway" | "dhcp_range_begin" | "dhcp_range_end", family: IpFamily): boolean {
  const value = input[key];
  if (value !== undefined && (value === null ? 4 : ipFamily(value)) === family) return true;
  return family === 6 && input[`${key}_ipv6`] !== undefined;
}

function checkDhcpRanges(next: NetworkValues): void {
  for (const family of FAMILIES) {
    const columns = FAMILY_COLUMNS[family];
    const begin = next[columns.begin];
    const end = next[columns.end];
    if (begin === null && end === null) continue;
    if (begin === null) throw invalid(`Invalid request: ${columns.begin} is required with ${columns.end}`);
    if (end === null) throw invalid(`Invalid request: ${columns.end} is required with ${columns.begin}`);
    const cidr = cidrOf(next, family);
    if (cidr === null) throw invalid(`Invalid request: ${columns.begin} "${begin}" needs an IPv${family} network`);
    const bounds = hostBounds(cidr);
    for (const [column, value] of [[columns.begin, begin], [columns.end, end]] as const) {
      const number = ipToBigInt(value);
      if (number < bounds.first || number > bounds.last) {
        throw invalid(`Invalid request: ${column} "${value}" is not a host address of network ${formatCidr(cidr)}`);
      }
    }
    if (ipToBigInt(begin) > ipToBigInt(end)) {
      throw invalid(`Invalid request: ${columns.begin} "${begin}" is after ${columns.end} "${end}"`);
    }
  }

  if (!next.dhcp || next.dhcp_nodes_only) return;
  const family: IpFamily = hasFamily(next, 4) ? 4 : 6;
  const columns = FAMILY_COLUMNS[family];
  if (next[columns.begin] === null) {
    throw invalid(`Invalid request: ${columns.begin} and ${columns.end} are required when dhcp is on`);
  }
}

function checkGateways(next: NetworkValues, input: NetworkInput, before: NetworkRow | null): void {
  let gatewaySent = false;
  for (const family of FAMILIES) {
    const column = FAMILY_COLUMNS[family].gateway;
    const gateway = next[column];
    if (gateway === null) continue;
    if (gateway !== before?.[column]) gatewaySent = true;
    const cidr = cidrOf(next, family);
    const bounds = cidr === null ? null : hostBounds(cidr);
    const value = ipToBigInt(gateway);
    if (cidr === null || bounds === null) {
      throw invalid(`Invalid request: ${column} "${gateway}" needs an IPv${family} network, and network "${next.name}" has none`);
    }
    if (value < bounds.first || value > bounds.last) {
      throw invalid(`Invalid request: ${column} "${gateway}" is not a host address of network "${next.name}" (${formatCidr(cidr)}): send a new ${column}`);
    }
    const range = dhcpRange({ ...next, id: 0 }, family);
    if (range !== null && value >= range.first && value <= range.last) {
      throw invalid(`Invalid request: ${column} "${gateway}" is inside the DHCP range`);
    }
  }
  if (gatewaySent && input.gateway_metric === undefined && next.gateway_metric === null) {
    next.gateway_metric = next.zone === "external" ? 100 : 101;
  }
}

async function checkNames(tx: Transaction, current: NetworkRow | null, next: NetworkValues): Promise<void> {
  if (current !== null && next.name !== current.name && (await findNetwork(tx, next.name)) !== null) {
    throw conflict(`Network "${next.name}" already exists`);
  }
  if (next.shared === null || next.shared === current?.shared) return;
  if (next.shared === next.name || next.shared === current?.name) throw invalid(`Invalid request: shared "${next.shared}" names this network itself`);
  if ((await findNetwork(tx, next.shared)) === null) throw invalid(`Invalid request: shared network "${next.shared}" does not exist`);
}

/** Rejects a new or changed address range that overlaps another network's. */
async function checkOverlap(tx: Transaction, current: NetworkRow | null, next: NetworkValues, before: NetworkRow | null): Promise<void> {
  const others = await tx.select().from(network).where(current === null ? sql`1 = 1` : ne(network.id, current.id));
  for (const family of FAMILIES) {
    const cidr = cidrOf(next, family);
    if (cidr === null || (current !== null && sameCidr(cidr, networkCidr(current, family)))) continue;
    const mine = cidrBounds(cidr);
    for (const other of others) {
      const theirs = networkCidr(other, family);
      if (theirs === null) continue;
      const bounds = cidrBounds(theirs);
      if (mine.first <= bounds.last && bounds.first <= mine.last) {
        const hint = before !== null && current === null && other.id === before.id ? ": send another network or clear this family" : "";
        throw conflict(`Network ${formatCidr(cidr)} overlaps network "${other.name}" (${formatCidr(theirs)})${hint}`);
      }
    }
  }
}

/** Maps controller keys of the request to the ip_address rows they move, by family. */
async function resolveControllerAddresses(
  tx: Transaction,
  networkName: string,
  holders: NetworkAddress[],
  byKey: Record<string, unknown>,
): Promise<Map<IpFamily, Map<number, string>>> {
  const result = new Map<IpFamily, Map<number, string>>([[4, new Map()], [6, new Map()]]);
  const keys = Object.keys(byKey);
  if (keys.length === 0) return result;
  const controllers = await listControllers(tx);
  for (const key of keys) {
    const item = controllers.find((candidate) => controllerKey(candidate) === key);
    if (item === undefined) throw invalid(`Invalid request: unknown key "${key}": not a network field or controller`);
    const sent = byKey[key];
    if (sent === "" || sent === null) throw invalid(`Invalid request: ${key} needs an address, not an empty value`);
    const address = typeof sent === "string" ? canonicalIp(sent.trim()) : null;
    if (address === null) throw invalid(`Invalid request: controller address "${String(sent)}" for key "${key}" is not a valid IP address`);
    const holder = holders.find((row) => row.controllerId === item.id);
    if (holder === undefined) {
      throw invalid(`Invalid request: controller "${item.hostname}" has no address in network "${networkName}": move it with POST /config/cluster`);
    }
    result.get(ipFamily(address)!)!.set(holder.id, address);
  }
  return result;
}

/**
 * Plans the addresses of one family after the change, or returns null when nothing that
 * decides addresses (network, DHCP range, sent controller addresses) changed.
 */
async function planFamily(
  tx: Transaction,
  family: IpFamily,
  current: NetworkRow,
  next: NetworkRow,
  holders: NetworkAddress[],
  controllerAddresses: Map<IpFamily, Map<number, string>>,
  now: number,
): Promise<Map<number, string | null> | null> {
  const columns = FAMILY_COLUMNS[family];
  const before = networkCidr(current, family);
  const after = networkCidr(next, family);
  const range = dhcpRange(next, family);
  const oldRange = dhcpRange(current, family);
  const sent = controllerAddresses.get(family)!;
  const unchanged = sameCidr(before, after) && range?.first === oldRange?.first && range?.last === oldRange?.last && sent.size === 0;
  if (unchanged) return null;

  const reserved = new Set<bigint>();
  if (sameCidr(before, after)) {
    const rows = await tx
      .select({ address: reservedIpAddress.ipaddress })
      .from(reservedIpAddress)
      .where(and(eq(reservedIpAddress.network_id, current.id), sql`${reservedIpAddress.expires_at} > ${now}`));
    for (const { address } of rows) if (ipFamily(address) === family) reserved.add(ipToBigInt(address));
  }

  return planAddresses({
    family,
    networkName: next.name,
    before,
    after: { cidr: after, range, gateway: next[columns.gateway] === null ? null : ipToBigInt(next[columns.gateway]!) },
    holders: holders.map((holder) => ({
      id: holder.id,
      address: family === 4 ? holder.ipaddress : holder.ipaddress_ipv6,
      controllerKey: holder.controllerHostname === null ? null : controllerKey({ hostname: holder.controllerHostname, beacon: holder.beacon }),
      description: holder.description,
    })),
    controllerAddresses: sent,
    reserved,
  });
}

const UPDATE_CHUNK = 400;

/** Writes planned addresses: first clears every moving row, so no row trips the unique index on an address another row is leaving. */
async function moveAddresses(tx: Transaction, family: IpFamily, plan: Map<number, string | null>): Promise<void> {
  const key = family === 4 ? "ipaddress" : "ipaddress_ipv6";
  const entries = [...plan.entries()];
  for (let start = 0; start < entries.length; start += UPDATE_CHUNK) {
    const ids = entries.slice(start, start + UPDATE_CHUNK).map(([id]) => id);
    await tx.update(ipAddress).set({ [key]: null }).where(inArray(ipAddress.id, ids));
  }
  const assigned = entries.filter(([, address]) => address !== null);
  for (let start = 0; start < assigned.length; start += UPDATE_CHUNK) {
    const chunk = assigned.slice(start, start + UPDATE_CHUNK);
    const cases = sql.join(chunk.map(([id, address]) => sql`WHEN ${id} THEN ${address}`), sql` `);
    await tx
      .update(ipAddress)
      .set({ [key]: sql`CASE ${ipAddress.id} ${cases} END` })
      .where(inArray(ipAddress.id, chunk.map(([id]) => id)));
  }
}

/** Removes reservations that fall outside the network after a change. */
async function dropStaleReservations(tx: Transaction, row: NetworkRow): Promise<void> {
  const reservations = await tx.select().from(reservedIpAddress).where(eq(reservedIpAddress.network_id, row.id));
  const stale = reservations.filter((reservation) => {
    const cidr = networkCidr(row, ipFamily(reservation.ipaddress) ?? 4);
    return cidr === null || !cidrContains(cidr, reservation.ipaddress);
  });
  if (stale.length > 0) await tx.delete(reservedIpAddress).where(inArray(reservedIpAddress.id, stale.map((item) => item.id)));
}

const LISTED_USERS = 5;

function listNames(names: string[]): string {
  const shown = names.slice(0, LISTED_USERS).join(", ");
  return names.length > LISTED_USERS ? `${shown}, ...` : shown;
}

/** Describes everything that keeps a network from being deleted, one entry per kind of user. */
async function describeUsers(tx: Transaction, row: NetworkRow): Promise<string[]> {
  const holders = await listNetworkAddresses(tx, row.id);
  const groups = await tx
    .select({ group: nodeGroup.name, name: groupInterface.interface })
    .from(groupInterface)
    .innerJoin(nodeGroup, eq(nodeGroup.id, groupInterface.group_id))
    .where(eq(groupInterface.network_id, row.id))
    .orderBy(nodeGroup.name, groupInterface.interface);

  const users: string[] = [];
  const add = (singular: string, plural: string, names: string[]) => {
    if (names.length === 0) return;
    users.push(`${names.length} ${names.length === 1 ? singular : plural}: ${listNames(names)}`);
  };
  add("controller", "controllers", holders.filter((holder) => holder.controllerId !== null).map((holder) => holder.device));
  add("node interface", "node interfaces", holders.filter((holder) => holder.nodeInterfaceId !== null).map((holder) => `${holder.device} ${holder.interfaceName}`));
  add("group interface", "group interfaces", groups.map((item) => `${item.group} ${item.name}`));
  add("switch", "switches", holders.filter((holder) => holder.switchId !== null).map((holder) => holder.device));
  add("other device", "other devices", holders.filter((holder) => holder.otherDeviceId !== null).map((holder) => holder.device));
  return users;
}
