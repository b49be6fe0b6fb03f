import type { Config, DhcpServer } from "./config.ts";
import { type AddressBook, type AddressedHost, type ControllerAddresses, describeHost, ipv4ToNumber } from "./dhcp-dns-hosts.ts";
import { bigIntToIp, cidrBounds, ipFamily } from "./ip.ts";
import { type NetworkRow, networkCidr } from "./ipam.ts";
import type { Templates } from "./templates.ts";

/** Boot files that non-iPXE firmware receives, by client architecture (DHCP option 93). */
export interface BootFiles {
  /** Architectures 7 and 9: x86-64 UEFI. */
  efiX64: string;
  /** Architecture 11: ARM64 UEFI. */
  efiArm64: string;
  /** Every other architecture, in practice legacy BIOS (0). */
  bios: string;
}

/** iPXE builds for nodes whose ipxe_kernel is "default". */
export const DEFAULT_BOOT_FILES: BootFiles = { efiX64: "luna_ipxe.efi", efiArm64: "luna_ipxe_arm64.efi", bios: "luna_undionly.kpxe" };

/** iPXE builds for nodes whose ipxe_kernel is "alternative": SNP-only drivers on UEFI. */
export const ALTERNATIVE_BOOT_FILES: BootFiles = { efiX64: "luna_snponly.efi", efiArm64: "luna_snponly_arm64.efi", bios: "luna_undionly.kpxe" };

/** User class that iPXE sends (option 77); such clients get the HTTP boot URL instead of a file. */
export const IPXE_USER_CLASS = "iPXE";

/** One fixed-address reservation: a known MAC and its IPv4 address. */
export interface DhcpHost {
  /** Declaration name, unique in the file: `<label>.<network>`. */
  name: string;
  /** Host name handed to the client (option 12), or null when the holder has no DNS label. */
  hostname: string | null;
  macaddress: string;
  ipaddress: string;
  /** True when the host gets the alternative (SNP-only) boot files. */
  alternative: boolean;
  /** The subnet's iPXE boot URL, repeated here for host-level boot branches. */
  bootUrl: string | null;
}

/** Pool restriction of a subnet inside a shared network: which clients may take its range. */
export type PoolClass = "udhcp" | "not-udhcp";

/** One IPv4 subnet declaration. */
export interface DhcpSubnet {
  /** network.id: AUTOINCREMENT, never reused, so Kea subnet ids stay stable. */
  id: number;
  name: string;
  network: string;
  netmask: string;
  prefix: number;
  /** Dynamic range, or null for dhcp_nodes_only networks and declarations without DHCP. */
  range: { begin: string; end: string } | null;
  /** Set inside shared networks: members serve udhcp clients (BMCs), the carrier everybody else. */
  poolClass: PoolClass | null;
  routers: string[];
  domainName: string;
  dnsServers: string[];
  ntpServers: string[];
  /** TFTP server for firmware boot files: the controller's address in this network. */
  nextServer: string | null;
  /** `http://<controller>:<port>/boot` for iPXE clients, or null without a reachable controller. */
  bootUrl: string | null;
  /** Relay agent addresses (Kea `relay.ip-addresses`). */
  relays: string[];
  /** False for the empty declaration of a controller network without DHCP (ISC only). */
  dhcp: boolean;
  hosts: DhcpHost[];
}

/** Subnets on one physical segment: the carrier network and the networks that name it in `shared`. */
export interface DhcpSharedNetwork {
  name: string;
  subnets: DhcpSubnet[];
}

/** The view-model of dhcpd.conf and the input of the Kea configuration. */
export interface DhcpModel {
  server: DhcpServer;
  bootFiles: BootFiles;
  alternativeBootFiles: BootFiles;
  ipxeUserClass: string;
  /** Subnets outside shared networks, by network id. */
  subnets: DhcpSubnet[];
  sharedNetworks: DhcpSharedNetwork[];
  /** Every reservation, in subnet order. */
  hosts: DhcpHost[];
  /** True when a shared network restricts pools by the udhcp vendor class. */
  usesPoolClasses: boolean;
  /** Addresses and names left out, with the reason. */
  problems: string[];
}

/** Port in the iPXE boot URL: the controller's API port, or `[WEBSERVER] PORT` when the API runs HTTPS. */
export function bootPort(config: Config, beacon: ControllerAddresses | null): number {
  if (config.api.protocol === "https") return config.webserver.port;
  return beacon?.serverport ?? config.api.listenPort;
}

/**
 * Builds the DHCP view-model from the address book: a subnet for every IPv4 network with DHCP
 * on (plus an empty declaration for controller networks without DHCP), shared networks, and one
 * reservation per known MAC. A MAC or address that another holder already uses, or an address
 * outside its network, is left out and listed in `problems`.
 */
export function buildDhcpModel(book: AddressBook, config: Config): DhcpModel {
  const problems = [...book.problems];
  const beacon = book.beacon;
  const port = bootPort(config, beacon);
  const primaryIpv4 = beacon ? [...beacon.ipv4ByNetwork.values()][0] ?? null : null;

  const subnets = new Map<number, DhcpSubnet>();
  for (const row of book.networks) {
    const cidr = networkCidr(row, 4);
    if (cidr === null) continue;
    const controllerAddress = beacon?.ipv4ByNetwork.get(row.id) ?? null;
    if (!row.dhcp && controllerAddress === null) continue;
    const nextServer = controllerAddress ?? (row.gateway ? primaryIpv4 : null);
    subnets.set(row.id, {
      id: row.id,
      name: row.name,
      network: cidr.network,
      netmask: prefixToNetmask(cidr.prefix),
      prefix: cidr.prefix,
      range: row.dhcp && !row.dhcp_nodes_only && row.dhcp_range_begin && row.dhcp_range_end
        ? { begin: row.dhcp_range_begin, end: row.dhcp_range_end }
        : null,
      poolClass: null,
      routers: row.gateway && ipFamily(row.gateway) === 4 ? [row.gateway] : [],
      domainName: row.name,
      dnsServers: ipv4List(row.nameserver_ip) ?? ipv4List(book.cluster.nameserver_ip) ?? (controllerAddress ? [controllerAddress] : []),
      ntpServers: ipv4List(row.ntp_server) ?? ipv4List(book.cluster.ntp_server) ?? (controllerAddress ? [controllerAddress] : []),
      nextServer,
      bootUrl: nextServer ? `http://${nextServer}:${port}/boot` : null,
      relays: ipv4List(row.dhcp_relay) ?? [],
      dhcp: row.dhcp,
      hosts: [],
    });
  }

  const networksById = new Map(book.networks.map((row) => [row.id, row]));
  const hosts = collectReservations(book.hosts, subnets, networksById, problems);
  const { standalone, sharedNetworks } = groupSharedNetworks(book.networks, subnets);
  return {
    server: config.dhcp.server,
    bootFiles: DEFAULT_BOOT_FILES,
    alternativeBootFiles: ALTERNATIVE_BOOT_FILES,
    ipxeUserClass: IPXE_USER_CLASS,
    subnets: standalone,
    sharedNetworks,
    hosts,
    usesPoolClasses: sharedNetworks.length > 0,
    problems,
  };
}

function collectReservations(
  addressed: AddressedHost[],
  subnets: Map<number, DhcpSubnet>,
  networksById: Map<number, NetworkRow>,
  problems: string[],
): DhcpHost[] {
  const bounds = new Map<number, { first: number; last: number }>();
  for (const [id, row] of networksById) {
    const cidr = networkCidr(row, 4);
    if (cidr !== null) bounds.set(id, { first: Number(cidrBounds(cidr).first), last: Number(cidrBounds(cidr).last) });
  }
  const macOwners = new Map<string, AddressedHost>();
  const addressOwners = new Map<string, AddressedHost>();
  const names = new Set<string>();
  const hosts: DhcpHost[] = [];
  for (const host of addressed) {
    if (host.macaddress === null || host.ipv4 === null) continue;
    const subnet = subnets.get(host.networkId);
    if (subnet === undefined || !subnet.dhcp) continue;
    const row = networksById.get(host.networkId)!;
    const range = bounds.get(host.networkId)!;
    const value = ipv4ToNumber(host.ipv4);
    if (!(value >= range.first && value <= range.last)) {
      problems.push(`Left out the DHCP reservation of ${describeHost(host)}: address ${host.ipv4} is outside network "${row.name}"`);
      continue;
    }
    const macOwner = macOwners.get(host.macaddress);
    if (macOwner !== undefined) {
      problems.push(`Left out the DHCP reservation of ${describeHost(host)}: MAC address ${host.macaddress} is already reserved for ${describeHost(macOwner)}`);
      continue;
    }
    const addressOwner = addressOwners.get(host.ipv4);
    if (addressOwner !== undefined) {
      problems.push(`Left out the DHCP reservation of ${describeHost(host)}: address ${host.ipv4} is already reserved for ${describeHost(addressOwner)}`);
      continue;
    }
    macOwners.set(host.macaddress, host);
    addressOwners.set(host.ipv4, host);

    // A holder without a valid DNS label gets a name built from its address, which is always valid.
    const base = host.label ?? `host-${host.ipv4.replaceAll(".", "-")}`;
    let name = `${base}.${subnet.name}`;
    for (let suffix = 2; names.has(name); suffix++) name = `${base}-${suffix}.${subnet.name}`;
    names.add(name);
    const reservation: DhcpHost = {
      name,
      hostname: host.label,
      macaddress: host.macaddress,
      ipaddress: host.ipv4,
      alternative: host.alternativeIpxe,
      bootUrl: subnet.bootUrl,
    };
    subnet.hosts.push(reservation);
    hosts.push(reservation);
  }
  return hosts;
}

/**
 * Puts each DHCP network whose `shared` names another DHCP network into one shared network with
 * that carrier. Inside it the members' ranges serve udhcp clients (BMCs) and the carrier's range
 * serves all others, as the original daemon does.
 */
function groupSharedNetworks(networks: NetworkRow[], subnets: Map<number, DhcpSubnet>): { standalone: DhcpSubnet[]; sharedNetworks: DhcpSharedNetwork[] } {
  const byName = new Map(networks.map((row) => [row.name, row]));
  const membersByCarrier = new Map<number, DhcpSubnet[]>();
  const memberIds = new Set<number>();
  for (const row of networks) {
    const member = subnets.get(row.id);
    const carrierRow = row.shared ? byName.get(row.shared) : undefined;
    if (member === undefined || !member.dhcp || carrierRow === undefined) continue;
    const carrier = subnets.get(carrierRow.id);
    if (carrier === undefined || !carrier.dhcp) continue;
    if (!membersByCarrier.has(carrier.id)) membersByCarrier.set(carrier.id, []);
    membersByCarrier.get(carrier.id)!.push(member);
    memberIds.add(member.id);
  }

  const sharedNetworks: DhcpSharedNetwork[] = [];
  const grouped = new Set<number>();
  for (const [carrierId, members] of membersByCarrier) {
    // A carrier that is itself a member of another shared network belongs there; its own
    // members then stay standalone subnets.
    if (memberIds.has(carrierId)) continue;
    const carrier = subnets.get(carrierId)!;
    carrier.poolClass = "not-udhcp";
    for (const member of members) member.poolClass = "udhcp";
    for (const subnet of [carrier, ...members]) grouped.add(subnet.id);
    sharedNetworks.push({ name: [carrier.name, ...members.map((member) => member.name)].join("-"), subnets: [carrier, ...members] });
  }
  const standalone = [...subnets.values()].filter((subnet) => !grouped.has(subnet.id));
  return { standalone, sharedNetworks };
}

/** Renders dhcpd.conf for ISC dhcpd from the model with the `dhcpd.conf` template. */
export function renderIscDhcpConfig(templates: Templates, model: DhcpModel): string {
  return templates.render("dhcpd.conf", model);
}

/** Client class names used in the Kea configuration. */
export const KEA_CLASSES = {
  udhcp: "luna-udhcp",
  notUdhcp: "luna-not-udhcp",
  alternative: "luna-alternative",
  ipxePrefix: "luna-ipxe-",
} as const;

const KEA_IS_IPXE = `option[77].hex == '${IPXE_USER_CLASS}'`;
const KEA_EFI_X64 = "(option[93].hex == 0x0007 or option[93].hex == 0x0009)";
const KEA_EFI_ARM64 = "option[93].hex == 0x000b";

/**
 * Builds the kea-dhcp4 configuration object from the same model. Subnet ids are network ids.
 * Boot files come from required client classes (`only-if-required`), which Kea evaluates after
 * subnet selection. So the iPXE URL can name the controller address of the client's subnet, and
 * the class `luna-alternative` that reservations assign can be tested. Each boot class sets both
 * the BOOTP file field and option 67, and the tests exclude each other. Option 93 is built into
 * Kea and is not redefined.
 * NOTE: only `kea-dhcp4 -t` checks this configuration here. That a running Kea applies the
 * fixed field of a required class and sees reservation classes in `member()` is not verified.
 */
export function buildKeaConfig(model: DhcpModel): { Dhcp4: Record<string, unknown> } {
  const classes: Record<string, unknown>[] = [];
  if (model.usesPoolClasses) {
    classes.push({ name: KEA_CLASSES.udhcp, test: "substring(option[60].hex,0,5) == 'udhcp'" });
    classes.push({ name: KEA_CLASSES.notUdhcp, test: `not member('${KEA_CLASSES.udhcp}')` });
  }
  classes.push({ name: KEA_CLASSES.alternative });
  const firmware = [
    { name: "luna-efi-x64", test: `${KEA_EFI_X64} and not member('${KEA_CLASSES.alternative}')`, file: model.bootFiles.efiX64 },
    { name: "luna-efi-x64-alternative", test: `${KEA_EFI_X64} and member('${KEA_CLASSES.alternative}')`, file: model.alternativeBootFiles.efiX64 },
    { name: "luna-efi-arm64", test: `${KEA_EFI_ARM64} and not member('${KEA_CLASSES.alternative}')`, file: model.bootFiles.efiArm64 },
    { name: "luna-efi-arm64-alternative", test: `${KEA_EFI_ARM64} and member('${KEA_CLASSES.alternative}')`, file: model.alternativeBootFiles.efiArm64 },
    { name: "luna-bios", test: `not ${KEA_EFI_X64} and not ${KEA_EFI_ARM64}`, file: model.bootFiles.bios },
  ];
  for (const entry of firmware) classes.push(bootClass(entry.name, `not (${KEA_IS_IPXE}) and ${entry.test}`, entry.file));

  const allSubnets = [...model.subnets, ...model.sharedNetworks.flatMap((shared) => shared.subnets)].filter((subnet) => subnet.dhcp);
  for (const subnet of allSubnets) {
    if (subnet.bootUrl !== null) classes.push(bootClass(`${KEA_CLASSES.ipxePrefix}${subnet.id}`, KEA_IS_IPXE, subnet.bootUrl));
  }

  const subnet4 = (subnet: DhcpSubnet) => keaSubnet(subnet, firmware.map((entry) => entry.name));
  return {
    Dhcp4: {
      "interfaces-config": { interfaces: ["*"] },
      authoritative: true,
      "valid-lifetime": 28800,
      "max-valid-lifetime": 86400,
      "lease-database": { type: "memfile", "lfc-interval": 3600 },
      "client-classes": classes,
      "subnet4": model.subnets.filter((subnet) => subnet.dhcp).map(subnet4),
      "shared-networks": model.sharedNetworks.map((shared) => ({ name: shared.name, subnet4: shared.subnets.map(subnet4) })),
    },
  };
}

/** Renders the Kea configuration as indented JSON text. */
export function renderKeaConfig(model: DhcpModel): string {
  return `${JSON.stringify(buildKeaConfig(model), null, 2)}\n`;
}

function bootClass(name: string, test: string, file: string): Record<string, unknown> {
  return {
    name,
    test,
    "only-if-required": true,
    "boot-file-name": file,
    "option-data": [{ name: "boot-file-name", data: file, "always-send": true }],
  };
}

function keaSubnet(subnet: DhcpSubnet, firmwareClasses: string[]): Record<string, unknown> {
  const options: { name: string; data: string }[] = [{ name: "domain-name", data: subnet.domainName }];
  if (subnet.routers.length > 0) options.push({ name: "routers", data: subnet.routers.join(", ") });
  if (subnet.dnsServers.length > 0) options.push({ name: "domain-name-servers", data: subnet.dnsServers.join(", ") });
  if (subnet.ntpServers.length > 0) options.push({ name: "ntp-servers", data: subnet.ntpServers.join(", ") });

  const result: Record<string, unknown> = { id: subnet.id, subnet: `${subnet.network}/${subnet.prefix}` };
  if (subnet.range !== null) {
    const pool: Record<string, unknown> = { pool: `${subnet.range.begin} - ${subnet.range.end}` };
    if (subnet.poolClass === "udhcp") pool["client-class"] = KEA_CLASSES.udhcp;
    if (subnet.poolClass === "not-udhcp") pool["client-class"] = KEA_CLASSES.notUdhcp;
    result.pools = [pool];
  }
  result["option-data"] = options;
  if (subnet.nextServer !== null) result["next-server"] = subnet.nextServer;
  if (subnet.relays.length > 0) result.relay = { "ip-addresses": subnet.relays };
  if (subnet.bootUrl !== null) result["require-client-classes"] = [`${KEA_CLASSES.ipxePrefix}${subnet.id}`, ...firmwareClasses];
  result.reservations = subnet.hosts.map((host) => {
    const reservation: Record<string, unknown> = { "hw-address": host.macaddress, "ip-address": host.ipaddress };
    if (host.hostname !== null) reservation.hostname = host.hostname;
    if (host.alternative) reservation["client-classes"] = [KEA_CLASSES.alternative];
    return reservation;
  });
  return result;
}

/** Converts a prefix length to a dotted netmask, e.g. 16 to 255.255.0.0. */
export function prefixToNetmask(prefix: number): string {
  return bigIntToIp(prefix === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefix)) - 1n), 4);
}

/** Returns the IPv4 addresses of a comma-separated list, or null when it has none. Host names are dropped. */
function ipv4List(text: string | null): string[] | null {
  if (!text) return null;
  const addresses = text.split(",").map((item) => item.trim()).filter((item) => ipFamily(item) === 4);
  return addresses.length > 0 ? addresses : null;
}
