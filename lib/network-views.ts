import { and, asc, eq, gt } from "drizzle-orm";
import type { Orm } from "./db/database.ts";
import { network, reservedIpAddress } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { canonicalIp, cidrContains, formatCidr, hostBounds, ipFamily, ipToBigInt } from "./ip.ts";
import { addressOwner, dhcpRange, listNetworkAddresses, networkCidr, type NetworkRow } from "./ipam.ts";
import { checkNetworkName, requireNetwork } from "./networks.ts";

/**
 * Renders a network in the original daemon's shape: `network` as CIDR, no `subnet`, and no
 * DHCP range or DHCP mode keys while DHCP is off. The list adds `subnet_ipv6` and always
 * shows `non_authoritative`; the single view shows it only when it is true.
 */
function renderNetwork(row: NetworkRow, inList: boolean): Record<string, unknown> {
  const ipv4 = networkCidr(row, 4);
  const ipv6 = networkCidr(row, 6);
  const view: Record<string, unknown> = {
    name: row.name,
    network: ipv4 === null ? null : formatCidr(ipv4),
    network_ipv6: ipv6 === null ? null : formatCidr(ipv6),
  };
  if (inList) view.subnet_ipv6 = row.subnet_ipv6;
  Object.assign(view, {
    gateway: row.gateway,
    gateway_ipv6: row.gateway_ipv6,
    gateway_metric: row.gateway_metric,
    nameserver_ip: row.nameserver_ip,
    nameserver_ip_ipv6: row.nameserver_ip_ipv6,
    ntp_server: row.ntp_server,
    dhcp: row.dhcp,
  });
  if (row.dhcp) {
    Object.assign(view, {
      dhcp_nodes_in_pool: row.dhcp_nodes_in_pool,
      dhcp_nodes_only: row.dhcp_nodes_only,
      dhcp_range_begin: row.dhcp_range_begin,
      dhcp_range_begin_ipv6: row.dhcp_range_begin_ipv6,
      dhcp_range_end: row.dhcp_range_end,
      dhcp_range_end_ipv6: row.dhcp_range_end_ipv6,
    });
  }
  Object.assign(view, {
    dhcp_relay: row.dhcp_relay,
    zone: row.zone,
    shared: row.shared,
    type: row.type || "ethernet",
    comment: row.comment,
  });
  if (inList || row.non_authoritative) view.non_authoritative = row.non_authoritative;
  return view;
}

/** Builds the GET /config/network body; throws 404 when there are no networks. */
export async function listNetworks(db: Orm): Promise<Record<string, unknown>> {
  const rows = await db.select().from(network).orderBy(asc(network.name));
  if (rows.length === 0) throw notFound("No networks are available");
  return { config: { network: Object.fromEntries(rows.map((row) => [row.name, renderNetwork(row, true)])) } };
}

/** Builds the GET /config/network/{name} body. */
export async function getNetworkView(db: Orm, name: string): Promise<Record<string, unknown>> {
  checkNetworkName(name);
  const row = await requireNetwork(db, name);
  return { config: { network: { [name]: renderNetwork(row, false) } } };
}

/** State of one address as GET /config/network/{name}/{ipaddr} reports it. */
export interface AddressStatus {
  /**
   * `taken` when an interface, controller, switch or device holds it; `reserved` when
   * _nextfreeip handed it out and the reservation has not expired; `dhcp` inside the DHCP
   * range; `unavailable` for the network, broadcast or gateway address; else `free`.
   */
  status: "free" | "taken" | "reserved" | "dhcp" | "unavailable";
  /** The holder of a taken address, e.g. `interface BOOTIF of node "node001"`. */
  owner?: string;
  /** Reason an address is unavailable. */
  reason?: string;
}

/** Reports whether `text` is free in the network; throws 404 for an invalid address or one outside it. */
export async function getAddressStatus(db: Orm, name: string, text: string, now: number): Promise<{ address: string; status: AddressStatus }> {
  checkNetworkName(name);
  const row = await requireNetwork(db, name);
  const address = canonicalIp(text);
  if (address === null) throw notFound(`Address "${text}" is not a valid IP address`);
  const family = ipFamily(address)!;
  const cidr = networkCidr(row, family);
  if (cidr === null || !cidrContains(cidr, address)) {
    const range = [networkCidr(row, 4), networkCidr(row, 6)].filter((item) => item !== null).map((item) => formatCidr(item!)).join(", ");
    throw notFound(`Address ${address} is not in network "${name}" (${range})`);
  }

  const owner = await addressOwner(db, row.id, address);
  if (owner !== null) return { address, status: { status: "taken", owner: owner.description } };

  const value = ipToBigInt(address);
  const bounds = hostBounds(cidr);
  if (value < bounds.first) return { address, status: { status: "unavailable", reason: "network address" } };
  if (value > bounds.last) return { address, status: { status: "unavailable", reason: "broadcast address" } };
  if (address === (family === 4 ? row.gateway : row.gateway_ipv6)) return { address, status: { status: "unavailable", reason: "gateway" } };

  const [reservation] = await db
    .select({ id: reservedIpAddress.id })
    .from(reservedIpAddress)
    .where(and(eq(reservedIpAddress.network_id, row.id), eq(reservedIpAddress.ipaddress, address), gt(reservedIpAddress.expires_at, now)));
  if (reservation !== undefined) return { address, status: { status: "reserved" } };

  const range = dhcpRange(row, family);
  if (range !== null && value >= range.first && value <= range.last) return { address, status: { status: "dhcp" } };
  return { address, status: { status: "free" } };
}

/** Lists the addresses in use in a network as `{ipaddress, device}`, lowest address first. */
export async function listNetworkMembers(db: Orm, name: string): Promise<{ ipaddress: string | null; device: string }[]> {
  checkNetworkName(name);
  const row = await requireNetwork(db, name);
  const holders = await listNetworkAddresses(db, row.id);
  const members = holders.map((holder) => ({ ipaddress: holder.ipaddress ?? holder.ipaddress_ipv6, device: holder.device }));
  const order = (address: string | null) => (address === null ? -1n : ipToBigInt(address) + (address.includes(":") ? 1n << 33n : 0n));
  return members.sort((left, right) => {
    const difference = order(left.ipaddress) - order(right.ipaddress);
    if (difference !== 0n) return difference < 0n ? -1 : 1;
    return left.device.localeCompare(right.device);
  });
}
