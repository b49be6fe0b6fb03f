import * as v from "valibot";
import { DOMAIN_NAME, flag, integer, ipList, ipOrEmpty, name, text } from "./fields.ts";
import { parseCidr } from "./ip.ts";
import type { NetworkInput } from "./networks.ts";

/** A network name: lower-case DNS labels, at most 253 characters. */
export const networkName = (field: string) => name(field, DOMAIN_NAME, 253);

/** A network in CIDR notation, IPv4 or IPv6; host bits are cleared later, not rejected. */
const cidrText = v.pipe(
  v.string(),
  v.check((value) => parseCidr(value) !== null, (issue) => `"${String(issue.input)}" is not a network in CIDR notation such as 10.141.0.0/16`),
);

/** An NTP server: an IPv4 address or a host name; `""` clears it. */
const ntpServer = v.pipe(
  text(253),
  v.check(
    (value) => value === "" || /^[a-z0-9.-]+$/.test(value),
    (issue) => `"${String(issue.input)}" is not a host name or IPv4 address`,
  ),
  v.transform((value) => (value === "" ? null : value)),
);

const optionalText = (max: number) => v.pipe(text(max), v.transform((value) => (value === "" ? null : value)));

/**
 * Fields of a network create, update or clone request. Besides the columns it takes `network`
 * in CIDR notation, `newnetname`, `clear` (`ipv4` or `ipv6`), and, as extra keys, new
 * controller addresses under `controller` or a controller's hostname with '-' written as '_'.
 */
export const NetworkFields = v.objectWithRest(
  {
    name: v.optional(networkName("name")),
    newnetname: v.optional(networkName("newnetname")),
    network: v.optional(cidrText),
    network_ipv6: v.optional(cidrText),
    gateway: v.optional(ipOrEmpty),
    gateway_ipv6: v.optional(ipOrEmpty),
    gateway_metric: v.optional(integer(0, 65535)),
    nameserver_ip: v.optional(ipList),
    nameserver_ip_ipv6: v.optional(ipList),
    ntp_server: v.optional(ntpServer),
    dhcp: v.optional(flag),
    dhcp_nodes_in_pool: v.optional(flag),
    dhcp_nodes_only: v.optional(flag),
    dhcp_range_begin: v.optional(ipOrEmpty),
    dhcp_range_end: v.optional(ipOrEmpty),
    dhcp_range_begin_ipv6: v.optional(ipOrEmpty),
    dhcp_range_end_ipv6: v.optional(ipOrEmpty),
    dhcp_relay: v.optional(ipList),
    zone: v.optional(v.picklist(["internal", "external"], "must be internal or external")),
    shared: v.optional(v.union([v.literal(""), networkName("shared")], "must be the name of another network or empty")),
    type: v.optional(optionalText(100)),
    non_authoritative: v.optional(flag),
    comment: v.optional(optionalText(1024)),
    clear: v.optional(v.picklist(["ipv4", "ipv6"], "must be ipv4 or ipv6")),
  },
  // Checked in lib/networks.ts, so a key that names no controller is reported as unknown.
  v.unknown(),
);

/** Splits parsed request fields into the `NetworkInput` of lib/networks.ts: extra keys become controller addresses. */
export function toNetworkInput(fields: v.InferOutput<typeof NetworkFields>): NetworkInput {
  const input: Record<string, unknown> = {};
  const controllerAddresses: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key in NetworkFields.entries) input[key] = key === "shared" && value === "" ? null : value;
    else controllerAddresses[key] = value;
  }
  return { ...(input as NetworkInput), controllerAddresses };
}
