import { join } from "node:path";
import { eq } from "drizzle-orm";
import type { Config } from "./config.ts";
import type { Database } from "./db/database.ts";
import { cluster } from "./db/schema/index.ts";
import { type AddressBook, describeHost, ipv4ToNumber, isHostName, readAddressBook } from "./dhcp-dns-hosts.ts";
import { ipFamily, ipToBigInt } from "./ip.ts";
import type { Templates } from "./templates.ts";

/** SOA timers in seconds, as the original daemon writes them. */
export const ZONE_TIMERS = { ttl: 3600, refresh: 86400, retry: 14400, expire: 3628800, minimum: 3600 } as const;

/** Maximum SOA serial, because the field is an unsigned 32-bit number. */
export const MAX_SERIAL = 4294967295;

/** Suffix of the zone files this daemon writes into the zone directory. */
export const ZONE_FILE_SUFFIX = ".luna.zone";

/** One resource record. Its `name` is relative to the zone origin. */
export interface DnsRecord {
  name: string;
  type: "A" | "AAAA" | "PTR";
  value: string;
}

/** View-model of one zone file (templates `zone` and `reverse-zone`). */
export interface DnsZone {
  /** Zone name without the trailing dot, e.g. `cluster` or `0.141.10.in-addr.arpa`. */
  name: string;
  kind: "forward" | "reverse";
  /** Zone file name inside the zone directory. */
  fileName: string;
  ttl: number;
  /** Fully qualified name server and SOA primary, with the trailing dot. */
  nameServer: string;
  /** SOA contact mailbox in DNS form, with the trailing dot. */
  contact: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
  records: DnsRecord[];
}

/** One zone statement of the named.conf include. */
export interface ZoneStatement {
  name: string;
  type: "master" | "forward";
  /** Absolute zone file path for master zones. */
  file: string | null;
  /** Name servers to forward to, for forward zones. */
  forwarders: string[];
}

/** Everything the DNS files are rendered from. */
export interface DnsModel {
  serial: number;
  zones: DnsZone[];
  /** View-model of the named.conf include (template `named.zones`). */
  statements: ZoneStatement[];
  problems: string[];
}

/**
 * Returns the next zone serial: one more than the last serial handed out or found in the
 * installed zone files, and at least the current unix time. Serials so keep increasing for two
 * changes in the same second and after serials of the YYYYMMDDnn form, which exceed unix time.
 */
export function nextSerial(previous: number, installedMax: number, nowMilliseconds: number): number {
  const serial = Math.max(previous + 1, installedMax + 1, Math.floor(nowMilliseconds / 1000));
  // NOTE: past 2^32 - 1 the serial would have to wrap under RFC 1982 arithmetic. Unix time
  // reaches that value in 2106, so no wrap is implemented and the value is capped.
  return Math.min(serial, MAX_SERIAL);
}

/**
 * Reads the address book and takes the next serial in one write transaction, so the serial
 * stored in cluster.dns_serial always belongs to the state the zones are rendered from.
 */
export async function readDnsModel(db: Database, config: Config, installedMaxSerial: number, nowMilliseconds: number): Promise<DnsModel> {
  return db.write(async (tx) => {
    const book = await readAddressBook(tx);
    const serial = nextSerial(book.cluster.dns_serial, installedMaxSerial, nowMilliseconds);
    await tx.update(cluster).set({ dns_serial: serial }).where(eq(cluster.id, 1));
    return buildDnsModel(book, config, serial);
  });
}

/**
 * Builds the zones and the zone statements of the named.conf include. Each network gets a
 * forward zone of its own name, with A and AAAA records for the beacon controller and every
 * labelled address in it. Reverse zones cover those addresses per IPv4 /24 and per IPv6 /64.
 * Networks marked non_authoritative become forward zones when they have name servers to forward to.
 */
export function buildDnsModel(book: AddressBook, config: Config, serial: number): DnsModel {
  const problems = [...book.problems];
  const beacon = book.beacon;
  const beaconLabel = beacon && isHostName(beacon.hostname) ? beacon.hostname : "ns";
  const beaconIpv4 = beacon ? firstValue(beacon.ipv4ByNetwork) : null;
  const beaconIpv6 = beacon ? firstValue(beacon.ipv6ByNetwork) : null;
  const beaconNetworkId = beacon ? firstKey(beacon.ipv4ByNetwork) ?? firstKey(beacon.ipv6ByNetwork) : null;
  const networkNames = new Map(book.networks.map((row) => [row.id, row.name]));
  if (beaconIpv4 === null && beaconIpv6 === null) {
    problems.push("The beacon controller has no address: name server records in the zones cannot resolve");
  }

  const zones: DnsZone[] = [];
  const statements: ZoneStatement[] = [];
  const reverse = new Map<string, { records: Map<string, DnsRecord>; sortKeys: Map<string, bigint> }>();
  const addReverse = (address: string, target: string) => {
    const { zone, name } = reverseName(address);
    let entry = reverse.get(zone);
    if (entry === undefined) reverse.set(zone, (entry = { records: new Map(), sortKeys: new Map() }));
    const existing = entry.records.get(name);
    if (existing !== undefined) {
      problems.push(`Left out the reverse record ${address} -> ${target}: ${address} already points to ${existing.value}`);
      return;
    }
    entry.records.set(name, { name, type: "PTR", value: target });
    entry.sortKeys.set(name, address.includes(":") ? ipToBigInt(address) : BigInt(ipv4ToNumber(address)));
  };

  const hostsByNetwork = new Map<number, typeof book.hosts>();
  for (const host of book.hosts) {
    if (!hostsByNetwork.has(host.networkId)) hostsByNetwork.set(host.networkId, []);
    hostsByNetwork.get(host.networkId)!.push(host);
  }

  for (const row of book.networks) {
    if (row.non_authoritative) {
      const forwarders = addressList(row.nameserver_ip) ?? addressList(book.cluster.forwardserver_ip);
      if (forwarders !== null) {
        statements.push({ name: row.name, type: "forward", file: null, forwarders });
        continue;
      }
      problems.push(`Network "${row.name}" is non-authoritative but has no name servers to forward to: serving it as a master zone`);
    }

    const records: DnsRecord[] = [];
    const used = new Set<string>([beaconLabel]);
    const beaconHere = {
      ipv4: beacon?.ipv4ByNetwork.get(row.id) ?? null,
      ipv6: beacon?.ipv6ByNetwork.get(row.id) ?? null,
    };
    // The name server must resolve inside every zone, so the beacon is listed everywhere, with
    // its address in this network when it has one.
    const nsIpv4 = beaconHere.ipv4 ?? (beaconHere.ipv6 === null ? beaconIpv4 : null);
    const nsIpv6 = beaconHere.ipv6 ?? (beaconHere.ipv4 === null ? beaconIpv6 : null);
    if (nsIpv4 !== null) records.push({ name: beaconLabel, type: "A", value: nsIpv4 });
    if (nsIpv6 !== null) records.push({ name: beaconLabel, type: "AAAA", value: nsIpv6 });
    if (beaconHere.ipv4 !== null) addReverse(beaconHere.ipv4, `${beaconLabel}.${row.name}.`);
    if (beaconHere.ipv6 !== null) addReverse(beaconHere.ipv6, `${beaconLabel}.${row.name}.`);

    for (const host of hostsByNetwork.get(row.id) ?? []) {
      if (host.label === null) continue;
      if (host.kind === "controller" && host.beacon) continue;
      if (used.has(host.label)) {
        problems.push(`Left out the name of ${describeHost(host)} in zone "${row.name}": "${host.label}" is the name server's name`);
        continue;
      }
      used.add(host.label);
      const target = `${host.label}.${row.name}.`;
      if (host.ipv4 !== null) {
        records.push({ name: host.label, type: "A", value: host.ipv4 });
        addReverse(host.ipv4, target);
      }
      if (host.ipv6 !== null) {
        records.push({ name: host.label, type: "AAAA", value: host.ipv6 });
        addReverse(host.ipv6, target);
      }
    }

    const zone = makeZone(row.name, "forward", `${beaconLabel}.${row.name}.`, `root.${row.name}.`, serial, records);
    zones.push(zone);
    statements.push({ name: zone.name, type: "master", file: join(config.dns.zoneDirectory, zone.fileName), forwarders: [] });
  }

  const nsDomain = beaconNetworkId !== null ? networkNames.get(beaconNetworkId)! : null;
  for (const name of [...reverse.keys()].sort()) {
    const entry = reverse.get(name)!;
    const records = [...entry.records.values()].sort((left, right) => compareBigInt(entry.sortKeys.get(left.name)!, entry.sortKeys.get(right.name)!));
    const nameServer = nsDomain !== null ? `${beaconLabel}.${nsDomain}.` : "localhost.";
    const contact = nsDomain !== null ? `root.${nsDomain}.` : "root.localhost.";
    const zone = makeZone(name, "reverse", nameServer, contact, serial, records);
    zones.push(zone);
    statements.push({ name, type: "master", file: join(config.dns.zoneDirectory, zone.fileName), forwarders: [] });
  }
  return { serial, zones, statements, problems };
}

function makeZone(name: string, kind: DnsZone["kind"], nameServer: string, contact: string, serial: number, records: DnsRecord[]): DnsZone {
  return {
    name,
    kind,
    fileName: `${name}${ZONE_FILE_SUFFIX}`,
    ttl: ZONE_TIMERS.ttl,
    nameServer,
    contact,
    serial,
    refresh: ZONE_TIMERS.refresh,
    retry: ZONE_TIMERS.retry,
    expire: ZONE_TIMERS.expire,
    minimum: ZONE_TIMERS.minimum,
    records,
  };
}

/**
 * Returns the reverse zone of an address and the record name inside it: IPv4 per /24
 * (`0.141.10.in-addr.arpa`, record `1`), IPv6 per /64 in nibble form.
 */
export function reverseName(address: string): { zone: string; name: string } {
  if (!address.includes(":")) {
    const [a, b, c, d] = address.split(".");
    return { zone: `${c}.${b}.${a}.in-addr.arpa`, name: d };
  }
  const nibbles = ipToBigInt(address).toString(16).padStart(32, "0").split("").reverse();
  return { zone: `${nibbles.slice(16).join(".")}.ip6.arpa`, name: nibbles.slice(0, 16).join(".") };
}

/** Renders one zone file with the `zone` or `reverse-zone` template. */
export function renderZone(templates: Templates, zone: DnsZone): string {
  return templates.render(zone.kind === "forward" ? "zone" : "reverse-zone", zone);
}

/** Renders the named.conf include that lists the zones, with the `named.zones` template. */
export function renderZoneStatements(templates: Templates, model: DnsModel): string {
  return templates.render("named.zones", { statements: model.statements });
}

/** Reads the serial from the SOA record of zone file text written by this daemon, or null. */
export function parseZoneSerial(text: string): number | null {
  const match = /\bSOA\s+\S+\s+\S+\s*\(\s*(\d+)/.exec(text);
  return match ? Number(match[1]) : null;
}

function addressList(text: string | null): string[] | null {
  if (!text) return null;
  const addresses = text.split(",").map((item) => item.trim()).filter((item) => ipFamily(item) !== null);
  return addresses.length > 0 ? addresses : null;
}

function compareBigInt(left: bigint, right: bigint): number {
  if (left < right) return -1;
  if (left > right) return 1;
  return 0;
}

function firstValue(map: Map<number, string>): string | null {
  for (const value of map.values()) return value;
  return null;
}

function firstKey(map: Map<number, string>): number | null {
  for (const key of map.keys()) return key;
  return null;
}
