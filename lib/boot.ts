import { and, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { alias } from "drizzle-orm/sqlite-core";
import type { Config } from "./config.ts";
import type { Orm, Transaction } from "./db/database.ts";
import { cluster, controller, ipAddress, job, network, node, nodeGroup, nodeInterface, osimage, osimageTag } from "./db/schema/index.ts";
import { type DomainError, invalid, notFound, unavailable } from "./errors.ts";
import { DEFAULT_PROVISION_INTERFACE, freeNodesQuery } from "./discovery.ts";
import { cidrContains, ipFamily, parseCidr } from "./ip.ts";

type Reader = Orm | Transaction;

const MAC_ADDRESS = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/;

/**
 * Parses a MAC address from a URL path segment into lower-case colon form. Accepts colons or
 * dashes in any case, and a segment that is still percent-encoded (`52%3A54%3A...`, as the iPXE
 * build of 2019 sends `${net0/mac}`) when the router passed it on undecoded.
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
 * Reads the connection addresses from Hono's `c.env`. Under @hono/node-server (what main.ts
 * uses on Node and on Deno) `env.incoming.socket` is the Node socket. Under `Deno.serve`, `env`
 * is the handler info, whose `remoteAddr` has no local address. Tests pass either shape to
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

/** Where a boot request came from: what resolveServerEndpoint needs. */
export interface BootRequest {
  connection: ConnectionAddresses;
  hostHeader: string | undefined;
}

/** Where a booting node reaches this daemon: the base URLs that every URL in a boot script starts with. */
export interface ServerEndpoint {
  /** Host part of the URLs: an address (IPv6 in brackets) or a host name. */
  host: string;
  /** Base of API URLs, e.g. `http://10.141.255.254:7050`, without a trailing slash. */
  apiUrl: string;
  /** Base of file downloads, e.g. `http://10.141.255.254:7051/files`. */
  filesUrl: string;
  /** How the host was chosen, for tests and logs. */
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

/**
 * Chooses the controller address that boot scripts put in their URLs, so that a node fetches
 * everything over the network its request came from:
 * 1. A client on loopback gets the Host header it used. QEMU's user network shows a guest to
 *    the host as 127.0.0.1 while the guest itself addressed the host as 10.0.2.2:PORT, and a
 *    loopback address would point the guest at itself.
 * 2. Otherwise the controller's address in the network that contains the local address of the
 *    connection, else in the network that contains the client's address.
 * 3. Otherwise the beacon controller's address, else the configured listen address.
 */
export async function resolveServerEndpoint(
  db: Reader,
  config: Config,
  connection: ConnectionAddresses,
  hostHeader: string | undefined,
): Promise<ServerEndpoint> {
  if (isLoopback(connection.remote)) {
    const parsed = parseHostHeader(hostHeader);
    if (parsed) {
      const port = parsed.port ?? (config.api.protocol === "https" ? 443 : 80);
      return buildEndpoint(config, parsed.host, port, "host-header");
    }
  }

  const rows = await db
    .select({
      beacon: controller.beacon,
      serverport: controller.serverport,
      ipaddress: ipAddress.ipaddress,
      ipaddress_ipv6: ipAddress.ipaddress_ipv6,
      network: network.network,
      subnet: network.subnet,
      network_ipv6: network.network_ipv6,
      subnet_ipv6: network.subnet_ipv6,
    })
    .from(controller)
    .innerJoin(ipAddress, eq(ipAddress.controller_id, controller.id))
    .innerJoin(network, eq(network.id, ipAddress.network_id))
    .orderBy(controller.id, ipAddress.id);

  for (const client of [connection.local, connection.remote]) {
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
}

/** Ways to find the node of a boot request. */
export type NodeSelector = { mac: string } | { name: string } | { nodeId: number };

const macInterface = alias(nodeInterface, "mac_interface");
const provisionInterfaceTable = alias(nodeInterface, "provision_interface");

/**
 * Loads the boot settings of one node in a single query: node, group, effective OS image and
 * tag, the provisioning interface with its address and network, and whether packing pauses the
 * boot. A MAC selector uses the unique index on node_interface.macaddress. Returns null when
 * nothing matches.
 */
export async function loadNodeBoot(db: Reader, selector: NodeSelector): Promise<NodeBootRecord | null> {
  const imageId = sql`coalesce(${node.osimage_id}, ${nodeGroup.osimage_id})`;
  const tagId = sql`coalesce(${node.osimagetag_id}, ${nodeGroup.osimagetag_id}, ${osimage.tag_id})`;
  const provisionName = sql`coalesce(nullif(${node.provision_interface}, ''), nullif(${nodeGroup.provision_interface}, ''), ${DEFAULT_PROVISION_INTERFACE})`;
  const fields = {
    nodeId: node.id,
    name: node.name,
    group: nodeGroup.name,
    service: node.service,
    nodeNetboot: node.netboot,
    groupNetboot: nodeGroup.netboot,
    provisionInterface: sql<string>`${provisionName}`,
    nodeKerneloptions: node.kerneloptions,
    groupKerneloptions: nodeGroup.kerneloptions,
    osimage: osimage.name,
    imageKernel: osimage.kernelfile,
    imageInitrd: osimage.initrdfile,
    imageFile: osimage.imagefile,
    imageKerneloptions: osimage.kerneloptions,
    tagKernel: osimageTag.kernelfile,
    tagInitrd: osimageTag.initrdfile,
    tagFile: osimageTag.imagefile,
    tagKerneloptions: osimageTag.kerneloptions,
    macaddress: provisionInterfaceTable.macaddress,
    ipaddress: ipAddress.ipaddress,
    ipaddressIpv6: ipAddress.ipaddress_ipv6,
    addressDhcp: ipAddress.dhcp,
    prefix: network.subnet,
    prefixIpv6: network.subnet_ipv6,
    gateway: network.gateway,
    gatewayIpv6: network.gateway_ipv6,
    network: network.name,
    networkDhcp: network.dhcp,
    nodesInPool: network.dhcp_nodes_in_pool,
    packing: sql<number>`(select ${cluster.packing_bootpause} from ${cluster} where ${cluster.id} = 1) and exists (select 1 from ${job} where ${job.kind} = 'pack' and ${job.object} = ${osimage.name} and ${job.state} in ('queued', 'running'))`,
  };

  let query;
  if ("mac" in selector) {
    query = db
      .select(fields)
      .from(macInterface)
      .innerJoin(node, eq(node.id, macInterface.node_id))
      .$dynamic();
  } else {
    query = db.select(fields).from(node).$dynamic();
  }
  query = query
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .leftJoin(osimage, eq(osimage.id, imageId))
    .leftJoin(osimageTag, and(eq(osimageTag.id, tagId), eq(osimageTag.osimage_id, osimage.id)))
    .leftJoin(provisionInterfaceTable, and(eq(provisionInterfaceTable.node_id, node.id), eq(provisionInterfaceTable.interface, provisionName)))
    .leftJoin(ipAddress, eq(ipAddress.node_interface_id, provisionInterfaceTable.id))
    .leftJoin(network, eq(network.id, ipAddress.network_id));
  if ("mac" in selector) query = query.where(eq(macInterface.macaddress, selector.mac));
  else if ("name" in selector) query = query.where(eq(node.name, selector.name));
  else query = query.where(eq(node.id, selector.nodeId));

  const [row] = await query.limit(1);
  if (!row) return null;
  const pick = <T>(...values: (T | null | undefined)[]): T | null => values.find((value) => value !== null && value !== undefined && value !== "") ?? null;
  const kerneloptions = pick(row.nodeKerneloptions, row.groupKerneloptions, row.tagKerneloptions, row.imageKerneloptions);
  return {
    nodeId: row.nodeId,
    name: row.name,
    group: row.group,
    service: row.service,
    netboot: row.nodeNetboot ?? row.groupNetboot ?? false,
    provisionInterface: row.provisionInterface,
    osimage: row.osimage,
    kernelfile: pick(row.tagKernel, row.imageKernel),
    initrdfile: pick(row.tagInitrd, row.imageInitrd),
    imagefile: pick(row.tagFile, row.imageFile),
    kerneloptions: kerneloptions === null ? null : normaliseKernelOptions(kerneloptions),
    macaddress: row.macaddress,
    ipaddress: row.ipaddress,
    ipaddressIpv6: row.ipaddressIpv6,
    prefix: row.prefix,
    prefixIpv6: row.prefixIpv6,
    gateway: row.gateway,
    gatewayIpv6: row.gatewayIpv6,
    network: row.network,
    dhcp: Boolean(row.networkDhcp) && (Boolean(row.addressDhcp) || Boolean(row.nodesInPool)),
    packing: Boolean(row.packing),
  };
}

/**
 * Turns stored kernel options into one command-line fragment. luna2-cli sends edited values
 * base64-encoded, so a value that is valid base64 of printable text is decoded; newlines become
 * spaces.
 */
export function normaliseKernelOptions(value: string): string {
  let text = value.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) {
    const decoded = Buffer.from(text, "base64").toString("utf8");
    if (/^[\x20-\x7e\t\r\n]+$/.test(decoded)) text = decoded.trim();
  }
  return text.split(/\s+/).filter((part) => part !== "").join(" ");
}

/** Names shown in the boot menu: groups that have an OS image, and nodes free for discovery. */
export interface BootMenuChoices {
  groups: string[];
  /** Nodes whose provisioning interface has no MAC address yet, by name, at most `limit`. */
  availableNodes: string[];
}

/** Loads the group and free node lists of the boot menu; the node list stops at `limit` names. */
export async function loadBootMenuChoices(db: Reader, limit: number): Promise<BootMenuChoices> {
  const groups = await db.select({ name: nodeGroup.name }).from(nodeGroup).where(sql`${nodeGroup.osimage_id} is not null`).orderBy(nodeGroup.name);
  const available = await freeNodesQuery(db).limit(limit);
  return { groups: groups.map((row) => row.name), availableNodes: available.map((row) => row.name) };
}

/**
 * Returns why a node cannot net-boot now, as the error its boot request fails with, or null
 * when it can: a pack of its OS image pauses booting (503), and a missing OS image, kernel,
 * initrd or provisioning address leaves nothing to boot (404).
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

/** The code of the first libSQL error in the cause chain, e.g. `SQLITE_BUSY` or `CLIENT_CLOSED`; null when there is none. */
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
