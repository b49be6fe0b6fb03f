import { decodeBase64Text } from "./base64-text.ts";
import { and, eq, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import { alias } from "drizzle-orm/sqlite-core";
import type { Config } from "./config.ts";
import type { Orm } from "./db/database.ts";
import { cluster, controller, ipAddress, job, network, node, nodeGroup, nodeInterface, osimage, osimageTag } from "./db/schema/index.ts";
import { type DomainError, invalid, notFound, unavailable } from "./errors.ts";
import { DEFAULT_PROVISION_INTERFACE, freeNodesQuery } from "./discovery.ts";
import { cidrContains, ipFamily, parseCidr } from "./ip.ts";

const MAC_ADDRESS = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/;

/**
 * Parses a MAC address from a URL path segment into lower-case colon form. Accepts colons or
 * dashes in any case. iPXE 1.0.0+git-20190125 (Debian's ipxe-qemu) sends `${net0/mac}`
 * percent-encoded (`52%3A54%3A...`), which the router decodes; a segment that is still encoded
 * after that, from a client that encoded it twice, is decoded here.
 */
export function parseMacParameter(value: string): string {
  let text = value.trim().toLowerCase();
  if (text.includes("%")) {
    try {
      text = decodeURIComponent(text);
    } catch {
      // Left as it is, so the check below rejects it naming the value.
    }
  }
  if (!MAC_ADDRESS.test(text)) {
    throw invalid(`Invalid request: MAC address "${value}" is invalid: use six pairs of hex digits separated by ':' or '-'`);
  }
  return text.replaceAll("-", ":");
}

/** The two ends of the TCP connection a request arrived on; null where the runtime does not tell. */
export interface ConnectionAddresses {
  /** The client's address. */
  remote: string | null;
  /** This daemon's address that the client connected to. */
  local: string | null;
}

function plainAddress(value: unknown): string | null {
  if (typeof value !== "string" || value === "") return null;
  // A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6 addresses.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(value);
  return mapped ? mapped[1] : value;
}

/**
 * Reads the connection addresses from Hono's `c.env`. Under @hono/node-server (main.ts on Node)
 * `env.incoming.socket` is the Node socket. Under `Deno.serve` (main.ts on Deno) `env` is the
 * handler info, whose `remoteAddr` has no local address. Tests pass either shape to
 * `app.request(path, init, env)`.
 */
export function readConnectionAddresses(env: unknown): ConnectionAddresses {
  const bindings = env as {
    incoming?: { socket?: { remoteAddress?: unknown; localAddress?: unknown } };
    server?: { incoming?: { socket?: { remoteAddress?: unknown; localAddress?: unknown } } };
    remoteAddr?: { hostname?: unknown };
  } | undefined;
  const socket = bindings?.incoming?.socket ?? bindings?.server?.incoming?.socket;
  if (socket) return { remote: plainAddress(socket.remoteAddress), local: plainAddress(socket.localAddress) };
  if (bindings?.remoteAddr) return { remote: plainAddress(bindings.remoteAddr.hostname), local: null };
  return { remote: null, local: null };
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(address: string | null): boolean {
  if (address === null) return false;
  return address === "::1" || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/** Origin of a boot request: the input of resolveServerEndpoint. */
export interface BootRequest {
  connection: ConnectionAddresses;
  hostHeader: string | undefined;
}

/** Base URLs under which a booting node reaches this daemon; every URL in a boot script starts with one. */
export interface ServerEndpoint {
  /** Host part of the URLs: an address (IPv6 in brackets) or a host name. */
  host: string;
  /** Base of API URLs, e.g. `http://10.141.255.254:7050`, without a trailing slash. */
  apiUrl: string;
  /** Base of file downloads, e.g. `http://10.141.255.254:7051/files`. */
  filesUrl: string;
  /** Rule that chose the host, for tests and logs. */
  source: "host-header" | "network" | "beacon" | "listen";
}

const HOST_HEADER = /^(?:([a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)|\[([0-9a-f:.]+)\])(?::(\d{1,5}))?$/i;

/** Splits a Host header into host and port; null when it is not a plain name or address, so nothing odd reaches a script. */
export function parseHostHeader(value: string | undefined): { host: string; port: number | null } | null {
  if (!value) return null;
  const match = HOST_HEADER.exec(value.trim());
  if (!match) return null;
  if (match[2] !== undefined && ipFamily(match[2]) !== 6) return null;
  const port = match[3] === undefined ? null : Number(match[3]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { host: match[1] ?? `[${match[2]}]`, port };
}

function urlHost(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

function buildEndpoint(config: Config, host: string, apiPort: number, source: ServerEndpoint["source"]): ServerEndpoint {
  // Files come from the API listener unless luna.ini names a separate web server port.
  const filesPort = config.webserver.port === config.api.listenPort ? apiPort : config.webserver.port;
  return {
    host,
    apiUrl: `${config.api.protocol}://${host}:${apiPort}`,
    filesUrl: `${config.webserver.protocol}://${host}:${filesPort}/files`,
    source,
  };
}

/** A controller address with its network, as boot scripts choose among them. */
export interface ControllerAddress {
  beacon: boolean;
  serverport: number;
  ipaddress: string | null;
  ipaddress_ipv6: string | null;
  network: string | null;
  subnet: number | null;
  network_ipv6: string | null;
  subnet_ipv6: number | null;
}

/**
 * Prepared statements per database handle. Every boot request runs them, and building the SQL
 * with Drizzle costs more than running it. Each returns a single JSON column, because the
 * libSQL client spends several microseconds per column of a result row.
 */
const statements = new WeakMap<Orm, ReturnType<typeof prepareStatements>>();

const controllerAddress = alias(ipAddress, "controller_address");
const controllerNetwork = alias(network, "controller_network");

/** SQL of a subquery that returns every controller address with its network as one JSON array, for parseControllerAddresses. */
function controllerAddressesJson(db: Orm) {
  return db
    .select({
      data: sql<string>`json_group_array(json_array(${controller.id}, ${controllerAddress.id}, ${controller.beacon}, ${controller.serverport}, ${controllerAddress.ipaddress}, ${controllerAddress.ipaddress_ipv6}, ${controllerNetwork.network}, ${controllerNetwork.subnet}, ${controllerNetwork.network_ipv6}, ${controllerNetwork.subnet_ipv6}))`,
    })
    .from(controller)
    .innerJoin(controllerAddress, eq(controllerAddress.controller_id, controller.id))
    .innerJoin(controllerNetwork, eq(controllerNetwork.id, controllerAddress.network_id))
    // The range condition makes SQLite read the few controller rows through the
    // (controller_id, network_id) index; without it, it scans every address of every node.
    .where(gt(controllerAddress.controller_id, 0));
}

function prepareStatements(db: Orm) {
  const controllerAddresses = controllerAddressesJson(db).prepare();
  return {
    controllerAddresses,
    nodeByMac: nodeBootQuery(db, "mac"),
    nodeByName: nodeBootQuery(db, "name"),
    nodeById: nodeBootQuery(db, "id"),
  };
}

function statementsOf(db: Orm): ReturnType<typeof prepareStatements> {
  let prepared = statements.get(db);
  if (!prepared) statements.set(db, (prepared = prepareStatements(db)));
  return prepared;
}

/** Loads every controller address with its network. */
export async function loadControllerAddresses(db: Orm): Promise<ControllerAddress[]> {
  const [row] = await statementsOf(db).controllerAddresses.all();
  return parseControllerAddresses(row?.data ?? null);
}

/** Reads the controller JSON array; inside the node query's json_array it arrives already parsed. */
function parseControllerAddresses(json: string | unknown[] | null): ControllerAddress[] {
  const items = (typeof json === "string" ? JSON.parse(json) : json ?? []) as [number, number, number, number, string | null, string | null, string | null, number | null, string | null, number | null][];
  // SQLite does not define the order of an aggregate's input rows: sort by controller, then address.
  items.sort((left, right) => left[0] - right[0] || left[1] - right[1]);
  return items.map(([, , beacon, serverport, ipaddress, ipaddress_ipv6, net, subnet, network_ipv6, subnet_ipv6]) => ({
    beacon: Boolean(beacon),
    serverport,
    ipaddress,
    ipaddress_ipv6,
    network: net,
    subnet,
    network_ipv6,
    subnet_ipv6,
  }));
}

/**
 * Chooses the controller address that boot scripts put in their URLs, so that a node fetches
 * everything over the network its request came from:
 * 1. A client on loopback gets the Host header it used. QEMU's user network shows a guest to
 *    the host as 127.0.0.1 while the guest itself addressed the host as 10.0.2.2:PORT, and a
 *    loopback address would point the guest at itself.
 * 2. Otherwise the controller's address in the network that contains the local address of the
 *    connection (or the listen address when the runtime does not report the local address),
 *    else in the network that contains the client's address.
 * 3. Otherwise the beacon controller's address, else the configured listen address.
 * `preloaded` saves the query when the caller already has the controller addresses.
 */
export async function resolveServerEndpoint(
  db: Orm,
  config: Config,
  connection: ConnectionAddresses,
  hostHeader: string | undefined,
  preloaded?: ControllerAddress[],
): Promise<ServerEndpoint> {
  if (isLoopback(connection.remote)) {
    const parsed = parseHostHeader(hostHeader);
    if (parsed) {
      const port = parsed.port ?? (config.api.protocol === "https" ? 443 : 80);
      return buildEndpoint(config, parsed.host, port, "host-header");
    }
  }

  const rows = preloaded ?? await loadControllerAddresses(db);

  // A listener bound to one address accepts connections only on it, so that address is the
  // local address when the runtime does not report one (Deno.serve).
  const listenAddress = ipFamily(config.api.listenHost) !== null && !/^(0\.0\.0\.0|::)$/.test(config.api.listenHost) ? config.api.listenHost : null;
  for (const client of [connection.local ?? listenAddress, connection.remote]) {
    if (client === null || isLoopback(client)) continue;
    const family = ipFamily(client);
    for (const row of rows) {
      const base = family === 4 ? row.network : row.network_ipv6;
      const prefix = family === 4 ? row.subnet : row.subnet_ipv6;
      const address = family === 4 ? row.ipaddress : row.ipaddress_ipv6;
      if (base === null || prefix === null || address === null) continue;
      const cidr = parseCidr(`${base}/${prefix}`);
      if (cidr && cidrContains(cidr, client)) return buildEndpoint(config, urlHost(address), row.serverport, "network");
    }
  }

  const beacon = rows.find((row) => row.beacon && (row.ipaddress ?? row.ipaddress_ipv6)) ?? rows.find((row) => row.ipaddress ?? row.ipaddress_ipv6);
  if (beacon) return buildEndpoint(config, urlHost((beacon.ipaddress ?? beacon.ipaddress_ipv6)!), beacon.serverport, "beacon");
  return buildEndpoint(config, urlHost(config.api.listenHost), config.api.listenPort, "listen");
}

/** A node's boot settings with inheritance resolved, read in one query. */
export interface NodeBootRecord {
  nodeId: number;
  name: string;
  group: string;
  service: boolean;
  /** node, else group, else false: without netboot the node boots from its local disk. */
  netboot: boolean;
  provisionInterface: string;
  osimage: string | null;
  kernelfile: string | null;
  initrdfile: string | null;
  imagefile: string | null;
  /** node, else group, else the OS image tag, else the OS image; decoded when stored as base64. */
  kerneloptions: string | null;
  /** The MAC address on the provisioning interface, if any. */
  macaddress: string | null;
  ipaddress: string | null;
  ipaddressIpv6: string | null;
  prefix: number | null;
  prefixIpv6: number | null;
  gateway: string | null;
  gatewayIpv6: string | null;
  /** The provisioning network, when the interface has an address row. */
  network: string | null;
  /** True when the node gets its address from the DHCP pool of its provisioning network. */
  dhcp: boolean;
  /** True when cluster packing_bootpause is set and a pack of the node's OS image is queued or running. */
  packing: boolean;
  /** Every controller address, read in the same query so that resolveServerEndpoint needs none. */
  controllers: ControllerAddress[];
}

/** Ways to find the node of a boot request. */
export type NodeSelector = { mac: string } | { name: string } | { nodeId: number };

const macInterface = alias(nodeInterface, "mac_interface");
const provisionInterfaceTable = alias(nodeInterface, "provision_interface");

/** Columns of the node boot query, in the order of its JSON array. */
type NodeBootRow = [
  nodeId: number,
  name: string,
  group: string,
  service: number,
  nodeNetboot: number | null,
  groupNetboot: number | null,
  provisionInterface: string,
  nodeKerneloptions: string | null,
  groupKerneloptions: string | null,
  osimage: string | null,
  imageKernel: string | null,
  imageInitrd: string | null,
  imageFile: string | null,
  imageKerneloptions: string | null,
  tagKernel: string | null,
  tagInitrd: string | null,
  tagFile: string | null,
  tagKerneloptions: string | null,
  macaddress: string | null,
  ipaddress: string | null,
  ipaddressIpv6: string | null,
  addressDhcp: number | null,
  prefix: number | null,
  prefixIpv6: number | null,
  gateway: string | null,
  gatewayIpv6: string | null,
  network: string | null,
  networkDhcp: number | null,
  nodesInPool: number | null,
  packing: number | null,
  controllers: unknown[] | null,
];

/** Builds the prepared node boot query that selects the node by MAC address, name or id through placeholder `key`. */
function nodeBootQuery(db: Orm, by: "mac" | "name" | "id") {
  const imageId = sql`coalesce(${node.osimage_id}, ${nodeGroup.osimage_id})`;
  const tagId = sql`coalesce(${node.osimagetag_id}, ${nodeGroup.osimagetag_id}, ${osimage.tag_id})`;
  const provisionName = sql`coalesce(nullif(${node.provision_interface}, ''), nullif(${nodeGroup.provision_interface}, ''), ${DEFAULT_PROVISION_INTERFACE})`;
  const packing = sql`(select ${cluster.packing_bootpause} from ${cluster} where ${cluster.id} = 1) and exists (select 1 from ${job} where ${job.kind} = 'pack' and ${job.object} = ${osimage.name} and ${job.state} in ('queued', 'running'))`;
  const data = sql<string>`json_array(
    ${node.id}, ${node.name}, ${nodeGroup.name}, ${node.service}, ${node.netboot}, ${nodeGroup.netboot}, ${provisionName},
    ${node.kerneloptions}, ${nodeGroup.kerneloptions},
    ${osimage.name}, ${osimage.kernelfile}, ${osimage.initrdfile}, ${osimage.imagefile}, ${osimage.kerneloptions},
    ${osimageTag.kernelfile}, ${osimageTag.initrdfile}, ${osimageTag.imagefile}, ${osimageTag.kerneloptions},
    ${provisionInterfaceTable.macaddress}, ${ipAddress.ipaddress}, ${ipAddress.ipaddress_ipv6}, ${ipAddress.dhcp},
    ${network.subnet}, ${network.subnet_ipv6}, ${network.gateway}, ${network.gateway_ipv6}, ${network.name}, ${network.dhcp}, ${network.dhcp_nodes_in_pool},
    ${packing}, (${controllerAddressesJson(db)}))`;

  const base = by === "mac"
    ? db.select({ data }).from(macInterface).innerJoin(node, eq(node.id, macInterface.node_id)).$dynamic()
    : db.select({ data }).from(node).$dynamic();
  const key = by === "mac" ? eq(macInterface.macaddress, sql.placeholder("key")) : by === "name" ? eq(node.name, sql.placeholder("key")) : eq(node.id, sql.placeholder("key"));
  return base
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .leftJoin(osimage, eq(osimage.id, imageId))
    .leftJoin(osimageTag, and(eq(osimageTag.id, tagId), eq(osimageTag.osimage_id, osimage.id)))
    .leftJoin(provisionInterfaceTable, and(eq(provisionInterfaceTable.node_id, node.id), eq(provisionInterfaceTable.interface, provisionName)))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, provisionInterfaceTable.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id))
    .where(key)
    .limit(1)
    .prepare();
}

/**
 * Loads the boot settings of one node in a single query: node, group, effective OS image and
 * tag, the provisioning interface with its address and network, whether packing pauses the
 * boot, and the controller addresses. A MAC selector uses the unique index on node_interface.macaddress. Returns null when
 * nothing matches.
 */
export async function loadNodeBoot(db: Orm, selector: NodeSelector): Promise<NodeBootRecord | null> {
  const prepared = statementsOf(db);
  const [result] = "mac" in selector
    ? await prepared.nodeByMac.all({ key: selector.mac })
    : "name" in selector
      ? await prepared.nodeByName.all({ key: selector.name })
      : await prepared.nodeById.all({ key: selector.nodeId });
  if (!result) return null;
  const [
    nodeId, name, group, service, nodeNetboot, groupNetboot, provisionInterface, nodeKerneloptions, groupKerneloptions,
    image, imageKernel, imageInitrd, imageFile, imageKerneloptions, tagKernel, tagInitrd, tagFile, tagKerneloptions,
    macaddress, ipaddress, ipaddressIpv6, addressDhcp, prefix, prefixIpv6, gateway, gatewayIpv6, networkName, networkDhcp, nodesInPool, packing, controllers,
  ] = JSON.parse(result.data) as NodeBootRow;
  const pick = (...values: (string | null)[]): string | null => values.find((value) => value !== null && value !== "") ?? null;
  const kerneloptions = pick(nodeKerneloptions, groupKerneloptions, tagKerneloptions, imageKerneloptions);
  return {
    nodeId,
    name,
    group,
    service: Boolean(service),
    netboot: Boolean(nodeNetboot ?? groupNetboot ?? false),
    provisionInterface,
    osimage: image,
    kernelfile: pick(tagKernel, imageKernel),
    initrdfile: pick(tagInitrd, imageInitrd),
    imagefile: pick(tagFile, imageFile),
    kerneloptions: kerneloptions === null ? null : normaliseKernelOptions(kerneloptions),
    macaddress,
    ipaddress,
    ipaddressIpv6,
    prefix,
    prefixIpv6,
    gateway,
    gatewayIpv6,
    network: networkName,
    dhcp: Boolean(networkDhcp) && (Boolean(addressDhcp) || Boolean(nodesInPool)),
    packing: Boolean(packing),
    controllers: parseControllerAddresses(controllers),
  };
}

/**
 * Turns stored kernel options into one command-line fragment. luna2-cli sends edited values
 * base64-encoded, so a value that is valid base64 of printable text is decoded; newlines become
 * spaces.
 */
export function normaliseKernelOptions(value: string): string {
  const text = decodeBase64Text(value) ?? value;
  return text.split(/\s+/).filter((part) => part !== "").join(" ");
}

/** Names shown in the boot menu: groups that have an OS image, and nodes free for discovery. */
export interface BootMenuChoices {
  groups: string[];
  /** Nodes whose provisioning interface has no MAC address yet, by name, at most `limit`. */
  availableNodes: string[];
}

/** Loads the group and free node lists of the boot menu; the node list stops at `limit` names. */
export async function loadBootMenuChoices(db: Orm, limit: number): Promise<BootMenuChoices> {
  const groups = await db.select({ name: nodeGroup.name }).from(nodeGroup).where(sql`${nodeGroup.osimage_id} is not null`).orderBy(nodeGroup.name);
  const available = await freeNodesQuery(db).limit(limit);
  return { groups: groups.map((row) => row.name), availableNodes: available.map((row) => row.name) };
}

/**
 * Milliseconds the boot menu reuses its group and free node lists. Every booting machine fetches
 * the menu first, and with few free nodes the list query reads every node (about 4 ms at 10,000
 * nodes, measured with scripts/bench-boot.ts), so a cluster that powers on at once would queue on it. A list a few seconds old is
 * harmless: choosing a node from it goes through /boot/manual/hostname, which reads the database.
 */
export const MENU_CHOICES_CACHE_MS = 5000;

const menuChoicesCache = new WeakMap<Orm, { loadedAt: number; limit: number; choices: Promise<BootMenuChoices> }>();

/**
 * Returns the boot menu lists, loading them at most once per MENU_CHOICES_CACHE_MS per database.
 * Concurrent requests share one load; a failed load is not kept.
 */
export function loadBootMenuChoicesCached(db: Orm, limit: number, now: number): Promise<BootMenuChoices> {
  const cached = menuChoicesCache.get(db);
  if (cached && cached.limit === limit && now - cached.loadedAt < MENU_CHOICES_CACHE_MS && now >= cached.loadedAt) return cached.choices;
  const choices = loadBootMenuChoices(db, limit);
  const entry = { loadedAt: now, limit, choices };
  menuChoicesCache.set(db, entry);
  choices.catch(() => {
    if (menuChoicesCache.get(db) === entry) menuChoicesCache.delete(db);
  });
  return choices;
}

/**
 * Returns why a node cannot net-boot now, as the error its boot request fails with, or null
 * when it can. A pack of its OS image pauses booting (503). A missing OS image, kernel, initrd
 * or provisioning address leaves nothing to boot (404).
 */
export function bootProblem(record: NodeBootRecord): DomainError | null {
  const image = record.osimage;
  if (image === null) return notFound(`Node "${record.name}" has no OS image: set osimage on the node or on group "${record.group}"`);
  if (record.packing) return unavailable(`Booting of node "${record.name}" is paused while OS image "${image}" is being packed: cluster packing_bootpause is set`);
  if (record.kernelfile === null) return notFound(`OS image "${image}" of node "${record.name}" has no kernelfile: pack the OS image`);
  if (record.initrdfile === null) return notFound(`OS image "${image}" of node "${record.name}" has no initrdfile: pack the OS image`);
  if (!record.dhcp && record.ipaddress === null && record.ipaddressIpv6 === null) {
    return notFound(`Node "${record.name}" has no address on its provisioning interface ${record.provisionInterface}: add the interface with a network`);
  }
  return null;
}

/** Returns the code of the first libSQL error in the cause chain, e.g. `SQLITE_BUSY` or `CLIENT_CLOSED`, or null when there is none. */
export function databaseErrorCode(error: unknown): string | null {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current.name === "LibsqlError") return String((current as Error & { code?: unknown }).code ?? "UNKNOWN");
  }
  return null;
}

/** Reads what boot scripts need from a request: the connection addresses and the Host header. */
export function bootRequestOf(c: Context): BootRequest {
  return { connection: readConnectionAddresses(c.env), hostHeader: c.req.header("host") };
}
