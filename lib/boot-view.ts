import {
  type BootMenuChoices,
  type BootRequest,
  type ControllerAddress,
  bootProblem,
  databaseErrorCode,
  isLoopback,
  loadBootMenuChoicesCached,
  loadNodeBoot,
  type NodeBootRecord,
  parseHostHeader,
  parseMacParameter,
  resolveServerEndpoint,
  type ServerEndpoint,
} from "./boot.ts";
import { assignMacToNode, claimGroupNode, type DiscoveredNode, discoverNode } from "./discovery.ts";
import { scheduleServiceRegeneration } from "./dhcp-dns-regeneration.ts";
import { DomainError, invalid, notFound, statusFor } from "./errors.ts";
import { LOOSE_NAME, nameProblem, STRICT_NAME } from "./fields.ts";
import { logger } from "./log.ts";
import { locateNodeBySwitchPort } from "./switch-port.ts";
import type { Services } from "./services.ts";

/** Fetch attempts a boot script makes before it falls back to the boot menu. */
export const FETCH_ATTEMPTS = 4;
/** Seconds a boot script waits between two fetch attempts. */
export const RETRY_DELAY_SECONDS = 3;
/** Seconds the failed-boot script shows its message before it requests the menu again. */
export const FAILED_MESSAGE_SECONDS = 5;
/** Milliseconds the boot menu waits for a key before it looks the machine up by MAC address. */
export const MENU_TIMEOUT_MS = 10_000;
/** Nodes the boot menu lists for choosing; an iPXE menu of thousands of items is unusable. */
export const MENU_NODE_LIMIT = 100;

/** Fields every iPXE script template receives. */
export interface ScriptView {
  /** Host part of the URLs, as ServerEndpoint chose it. */
  host: string;
  /** Base of API URLs, without a trailing slash. */
  apiUrl: string;
  /** Base of file URLs, e.g. `http://10.141.255.254:7050/files`. */
  filesUrl: string;
  attempts: number;
  retryDelaySeconds: number;
}

function scriptView(endpoint: ServerEndpoint): ScriptView {
  return {
    host: endpoint.host,
    apiUrl: endpoint.apiUrl,
    filesUrl: endpoint.filesUrl,
    attempts: FETCH_ATTEMPTS,
    retryDelaySeconds: RETRY_DELAY_SECONDS,
  };
}

/**
 * Makes text safe for an iPXE `echo` or menu line: iPXE expands `${...}`, splits commands at
 * `||` and `&&`, and ends the line at a newline, so those characters are replaced.
 */
export function ipxeText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").replace(/[$|&]/g, "_");
}

/** View of templates/boot-menu.ipxe.eta. */
export interface BootMenuView extends ScriptView {
  timeoutMs: number;
  /** Groups with an OS image; `id` is the URL-encoded name that goes into the URL. */
  groups: { id: string; label: string }[];
  /** Nodes without a MAC address on their provisioning interface, at most MENU_NODE_LIMIT. */
  availableNodes: string[];
  /** True when more free nodes exist than the menu lists. */
  moreNodes: boolean;
}

/** Builds the view of the full boot menu; `choices` holds up to MENU_NODE_LIMIT + 1 free nodes. */
export function buildBootMenuView(endpoint: ServerEndpoint, choices: BootMenuChoices): BootMenuView {
  return {
    ...scriptView(endpoint),
    timeoutMs: MENU_TIMEOUT_MS,
    groups: choices.groups.map((name) => ({ id: encodeURIComponent(name), label: ipxeText(name) })),
    availableNodes: choices.availableNodes.slice(0, MENU_NODE_LIMIT),
    moreNodes: choices.availableNodes.length > MENU_NODE_LIMIT,
  };
}

/** View of templates/boot-short.ipxe.eta. */
export interface BootShortView extends ScriptView {
  timeoutMs: number;
}

/** Builds the view of the short boot menu. */
export function buildBootShortView(endpoint: ServerEndpoint): BootShortView {
  return { ...scriptView(endpoint), timeoutMs: MENU_TIMEOUT_MS };
}

/** View of templates/boot-disk.ipxe.eta. */
export type BootDiskView = ScriptView;

/** Builds the view of the local-disk boot script. */
export function buildBootDiskView(endpoint: ServerEndpoint): BootDiskView {
  return scriptView(endpoint);
}

/** View of templates/boot-failed.ipxe.eta. */
export interface BootFailedView extends ScriptView {
  /** Reason the boot failed, made safe for `echo`. */
  message: string;
  delaySeconds: number;
}

/** Builds the view of the failed-boot script that shows `message` and requests the menu again. */
export function buildBootFailedView(endpoint: ServerEndpoint, message: string): BootFailedView {
  return { ...scriptView(endpoint), message: ipxeText(message), delaySeconds: FAILED_MESSAGE_SECONDS };
}

/** View of templates/node-boot.ipxe.eta. */
export interface NodeBootView extends ScriptView {
  node: string;
  osimage: string;
  kernelUrl: string;
  initrdUrl: string;
  /** The whole kernel command line, `initrd=initrd.img` first because UEFI kernels need it. */
  kernelArguments: string;
}

/** Returns the address a node's kernel configures: `dhcp`, or `address/prefix`, IPv4 when it has one. */
export function kernelIpArgument(record: NodeBootRecord): string {
  if (record.dhcp) return "dhcp";
  if (record.ipaddress !== null) return `${record.ipaddress}/${record.prefix}`;
  return `${record.ipaddressIpv6}/${record.prefixIpv6}`;
}

/**
 * Builds the view of a node's boot script. The `luna.*` kernel parameters tell the initramfs
 * who it is and where to call back: the install URL and a provision token that lets it fetch
 * the install script even when NAT hides its provisioning address from the controller. `record` must have passed
 * bootProblem, so the OS image, kernel and initrd are set.
 */
export function buildNodeBootView(
  endpoint: ServerEndpoint,
  record: NodeBootRecord,
  mac: string,
  token: string,
  verifyCertificate: boolean,
): NodeBootView {
  const ipv4 = record.dhcp || record.ipaddress !== null;
  const gateway = ipv4 ? record.gateway : record.gatewayIpv6;
  const parameters = [
    "initrd=initrd.img",
    "root=luna",
    `luna.node=${record.name}`,
    `luna.hostname=${record.name}`,
    `luna.mac=${mac}`,
    `luna.bootif=${record.provisionInterface}`,
    `luna.ip=${kernelIpArgument(record)}`,
    `luna.gw=${gateway ?? ""}`,
    `luna.url=${endpoint.apiUrl}`,
    `luna.install=${endpoint.apiUrl}/boot/install/${record.name}`,
    `luna.token=${token}`,
    `luna.verifycert=${verifyCertificate ? "yes" : "no"}`,
    `luna.loghost=${endpoint.host}`,
    `luna.service=${record.service ? 1 : 0}`,
  ];
  if (record.dhcp) parameters.push("luna.bootproto=dhcp");
  if (record.kerneloptions) parameters.push(record.kerneloptions);
  return {
    ...scriptView(endpoint),
    node: record.name,
    osimage: ipxeText(record.osimage ?? ""),
    kernelUrl: `${endpoint.filesUrl}/${encodeURIComponent(record.kernelfile ?? "")}`,
    initrdUrl: `${endpoint.filesUrl}/${encodeURIComponent(record.initrdfile ?? "")}`,
    kernelArguments: parameters.join(" "),
  };
}

/** Quotes a value for bash: single quotes, with each `'` written as `'\''`; null becomes `''`. */
export function shellQuote(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "''";
  return `'${String(value).replaceAll("'", `'\\''`)}'`;
}

/** Values of the install script that the boot record does not contain. */
export interface InstallExtras {
  prescript: string | null;
  partscript: string | null;
  postscript: string | null;
  nameserver: string | null;
}

/** View of templates/install.sh.eta; every value goes into the script through `q`. */
export interface InstallView {
  node: string;
  /** `<node>.<provisioning network>`, or the node name when it has no network. */
  hostname: string;
  group: string;
  osimage: string;
  imagefile: string;
  apiUrl: string;
  filesUrl: string;
  verifyCertificate: boolean;
  token: string;
  systemRoot: string;
  provisionInterface: string;
  macaddress: string | null;
  ipaddress: string | null;
  prefix: number | null;
  gateway: string | null;
  network: string | null;
  dhcp: boolean;
  nameserver: string | null;
  /** Scripts base64-encoded as stored; empty when unset. */
  prescript: string;
  partscript: string;
  postscript: string;
  /** Quotes a value for bash. */
  q: typeof shellQuote;
}

/** Folder the installer mounts the node's root file system at. */
export const SYSTEM_ROOT = "/sysroot";

/** Builds the view of a node's install script; `record` must have an OS image with an imagefile. */
export function buildInstallView(
  endpoint: ServerEndpoint,
  record: NodeBootRecord,
  extras: InstallExtras,
  token: string,
  verifyCertificate: boolean,
): InstallView {
  const ipv4 = record.ipaddress !== null || record.ipaddressIpv6 === null;
  return {
    node: record.name,
    hostname: record.network ? `${record.name}.${record.network}` : record.name,
    group: record.group,
    osimage: record.osimage ?? "",
    imagefile: record.imagefile ?? "",
    apiUrl: endpoint.apiUrl,
    filesUrl: endpoint.filesUrl,
    verifyCertificate,
    token,
    systemRoot: SYSTEM_ROOT,
    provisionInterface: record.provisionInterface,
    macaddress: record.macaddress,
    ipaddress: ipv4 ? record.ipaddress : record.ipaddressIpv6,
    prefix: ipv4 ? record.prefix : record.prefixIpv6,
    gateway: ipv4 ? record.gateway : record.gatewayIpv6,
    network: record.network,
    dhcp: record.dhcp,
    nameserver: extras.nameserver,
    prescript: extras.prescript ?? "",
    partscript: extras.partscript ?? "",
    postscript: extras.postscript ?? "",
    q: shellQuote,
  };
}

const bootLog = logger("boot");

/** A template name, its view and the status to send it with. */
interface RenderedScript {
  template: string;
  view: object;
  status: number;
}

const SCRIPT_HEADERS = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };

/**
 * Maps an error to the status and the message a failed-boot script shows. A libSQL error other
 * than a constraint violation means the database cannot serve the request now (503). A
 * constraint violation means another writer (for example a second controller) changed the
 * same rows first (409), so the machine's next attempt finds the new state.
 */
function describeFailure(error: unknown): { status: number; message: string } {
  if (error instanceof DomainError) return { status: statusFor(error), message: error.message };
  const code = databaseErrorCode(error);
  if (code?.startsWith("SQLITE_CONSTRAINT")) return { status: 409, message: "Another request changed the same node at the same time: try again" };
  if (code !== null) return { status: 503, message: `Database unavailable (${code}): try again later` };
  return { status: 500, message: "Internal server error: see the daemon log" };
}

/**
 * Returns the endpoint for a failed-boot script when the database cannot name the controller address:
 * the Host header the client used, else the local address of the connection, else the listen
 * address.
 */
function fallbackEndpoint(services: Services, request: BootRequest): ServerEndpoint {
  const { api, webserver } = services.config;
  const parsed = parseHostHeader(request.hostHeader);
  const local = request.connection.local !== null && !isLoopback(request.connection.local) ? request.connection.local : null;
  const address = local ?? api.listenHost;
  const host = parsed?.host ?? (address.includes(":") ? `[${address}]` : address);
  const port = parsed?.port ?? api.listenPort;
  const filesPort = webserver.port === api.listenPort ? port : webserver.port;
  return { host, apiUrl: `${api.protocol}://${host}:${port}`, filesUrl: `${webserver.protocol}://${host}:${filesPort}/files`, source: "listen" };
}

/**
 * Resolves the endpoint of the request once. A caller that has loaded the controller addresses
 * with the node passes them, which saves a query.
 */
type EndpointResolver = (preloaded?: ControllerAddress[]) => Promise<ServerEndpoint>;

/**
 * Serves a boot request with an iPXE script whatever happens. `produce` renders the script of
 * a successful request; any error it throws becomes the failed-boot script, sent with the
 * error's status (404 nothing matches, 503 database unavailable), so a booting machine always
 * shows a reason and asks again.
 */
async function serveBootScript(
  services: Services,
  request: BootRequest,
  route: string,
  produce: (endpoint: EndpointResolver) => Promise<RenderedScript>,
): Promise<Response> {
  let resolved: ServerEndpoint | null = null;
  const endpoint: EndpointResolver = async (preloaded) => {
    resolved ??= await resolveServerEndpoint(services.db.orm, services.config, request.connection, request.hostHeader, preloaded);
    return resolved;
  };
  try {
    const script = await produce(endpoint);
    return new Response(services.templates.render(script.template, script.view), { status: script.status, headers: SCRIPT_HEADERS });
  } catch (error) {
    const failure = describeFailure(error);
    const fields = { route, client: request.connection.remote, status: failure.status, reason: failure.message };
    if (failure.status >= 500) bootLog.error("Boot request {route} from {client} failed with {status}: {reason}", { ...fields, error: String(error) });
    else bootLog.info("Boot request {route} from {client} failed with {status}: {reason}", fields);
    // The resolver may have set `resolved` before the error; TypeScript cannot see that assignment.
    let target = resolved as ServerEndpoint | null;
    if (target === null && failure.status < 500) target = await endpoint().catch(() => null);
    const view = buildBootFailedView(target ?? fallbackEndpoint(services, request), failure.message);
    return new Response(services.templates.render("boot-failed.ipxe", view), { status: failure.status, headers: SCRIPT_HEADERS });
  }
}

/** Serves GET /boot (`full`) or GET /boot/short. */
export function serveBootMenu(services: Services, request: BootRequest, variant: "full" | "short"): Promise<Response> {
  return serveBootScript(services, request, variant === "full" ? "/boot" : "/boot/short", async (endpoint) => {
    if (variant === "short") return { template: "boot-short.ipxe", view: buildBootShortView(await endpoint()), status: 200 };
    const choices = await loadBootMenuChoicesCached(services.db.orm, MENU_NODE_LIMIT + 1, services.clock.now());
    return { template: "boot-menu.ipxe", view: buildBootMenuView(await endpoint(), choices), status: 200 };
  });
}

/** Serves GET /boot/disk. */
export function serveBootDisk(services: Services, request: BootRequest): Promise<Response> {
  return serveBootScript(services, request, "/boot/disk", async (endpoint) => ({ template: "boot-disk.ipxe", view: buildBootDiskView(await endpoint()), status: 200 }));
}

/** Renders the boot script of a node found by `mac`: the local-disk script without netboot. */
async function nodeBootScript(services: Services, endpoint: EndpointResolver, record: NodeBootRecord, mac: string): Promise<RenderedScript> {
  const where = await endpoint(record.controllers);
  if (!record.netboot) return { template: "boot-disk.ipxe", view: buildBootDiskView(where), status: 200 };
  const problem = bootProblem(record);
  if (problem) throw problem;
  const token = await services.tokens.provisionTokenFor(record.name);
  const view = buildNodeBootView(where, record, mac, token, services.config.api.verifyCertificate);
  return { template: "node-boot.ipxe", view, status: 200 };
}

async function bootDiscovered(services: Services, endpoint: EndpointResolver, found: DiscoveredNode, mac: string, route: string): Promise<RenderedScript> {
  if (found.outcome !== "known") {
    bootLog.info("Gave MAC address {mac} to node {node} by {outcome} on {route}", { mac, node: found.name, outcome: found.outcome, route });
    // DHCP hands out fixed addresses by MAC address, so its configuration changed.
    scheduleServiceRegeneration(services, `MAC address ${mac} given to node ${found.name} on ${route}`);
  }
  const record = await loadNodeBoot(services.db.orm, { nodeId: found.nodeId });
  if (!record) throw notFound(`Node "${found.name}" does not exist any more`);
  return nodeBootScript(services, endpoint, record, mac);
}

/**
 * Serves GET /boot/search/mac/{mac}: the boot script of the node that has the MAC address, or of
 * the node discovery gives it (first the node cabled to the switch port where an SNMP walk of
 * the switches finds the MAC, then next-node discovery); 404 when neither exists.
 */
export function serveBootByMac(services: Services, request: BootRequest, rawMac: string): Promise<Response> {
  return serveBootScript(services, request, "/boot/search/mac", async (endpoint) => {
    const mac = parseMacParameter(rawMac);
    const record = await loadNodeBoot(services.db.orm, { mac });
    if (record) return nodeBootScript(services, endpoint, record, mac);
    const found = await discoverNode(services.db, mac, services.clock.now(), (unknown) => locateNodeBySwitchPort(services, unknown));
    if (!found) throw notFound(`No config or autodetect available for node with MAC address ${mac}`);
    return bootDiscovered(services, endpoint, found, mac, "/boot/search/mac");
  });
}

/** Serves GET /boot/manual/group/{group}/{mac}: a node of the group takes the MAC address. */
export function serveManualGroupBoot(services: Services, request: BootRequest, groupName: string, rawMac: string): Promise<Response> {
  return serveBootScript(services, request, "/boot/manual/group", async (endpoint) => {
    const problem = nameProblem("Group name", groupName, LOOSE_NAME);
    if (problem) throw invalid(`Invalid request: ${problem}`);
    const mac = parseMacParameter(rawMac);
    const found = await claimGroupNode(services.db, groupName, mac, services.clock.now());
    return bootDiscovered(services, endpoint, found, mac, "/boot/manual/group");
  });
}

/** Serves GET /boot/manual/hostname/{hostname}/{mac}: the named node takes the MAC address. */
export function serveManualHostnameBoot(services: Services, request: BootRequest, nodeName: string, rawMac: string): Promise<Response> {
  return serveBootScript(services, request, "/boot/manual/hostname", async (endpoint) => {
    const problem = nameProblem("Node name", nodeName, STRICT_NAME);
    if (problem) throw invalid(`Invalid request: ${problem}`);
    const mac = parseMacParameter(rawMac);
    const found = await assignMacToNode(services.db, nodeName, mac);
    return bootDiscovered(services, endpoint, found, mac, "/boot/manual/hostname");
  });
}
