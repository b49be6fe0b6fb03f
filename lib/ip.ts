import ipaddr from "ipaddr.js";

export type IpFamily = 4 | 6;

/** A parsed network: canonical base address, prefix length and family. */
export interface Cidr {
  family: IpFamily;
  /** Network address with host bits cleared, in canonical text form. */
  network: string;
  prefix: number;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

/** Returns the family of a strictly valid address (dotted quad or IPv6 text), or null. */
export function ipFamily(text: string): IpFamily | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return 4;
  if (text.includes(":") && ipaddr.IPv6.isValid(text) && !text.includes("%")) return 6;
  return null;
}

/** Returns the canonical form of an address: dotted quad, or RFC 5952 compressed IPv6. */
export function canonicalIp(text: string): string | null {
  const family = ipFamily(text);
  if (family === null) return null;
  return ipaddr.parse(text).toString();
}

/** A canonical dotted quad, which is how IPv4 addresses are stored; the fast path of ipToBigInt. */
const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Converts an address to an integer, for arithmetic and ordering. */
export function ipToBigInt(text: string): bigint {
  const quad = DOTTED_QUAD.exec(text);
  if (quad) return BigInt(((Number(quad[1]) << 24) >>> 0) + (Number(quad[2]) << 16) + (Number(quad[3]) << 8) + Number(quad[4]));
  const bytes = ipaddr.parse(text).toByteArray();
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** Converts an integer back to an address of `family`. */
export function bigIntToIp(value: bigint, family: IpFamily): string {
  const length = family === 4 ? 4 : 16;
  const bytes: number[] = new Array(length);
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * Parses `address/prefix` and clears the host bits, so `10.141.3.4/16` becomes 10.141.0.0/16.
 * Returns null for anything that is not a valid CIDR.
 */
export function parseCidr(text: string): Cidr | null {
  const match = /^([^/\s]+)\/(\d{1,3})$/.exec(text.trim());
  if (!match) return null;
  const family = ipFamily(match[1]);
  const prefix = Number(match[2]);
  if (family === null || prefix > BITS[family]) return null;
  const hostBits = BigInt(BITS[family] - prefix);
  const base = (ipToBigInt(match[1]) >> hostBits) << hostBits;
  return { family, network: bigIntToIp(base, family), prefix };
}

/** Renders a network as `address/prefix`. */
export function formatCidr(cidr: Cidr): string {
  return `${cidr.network}/${cidr.prefix}`;
}

/** First and last address of the network, as integers. */
export function cidrBounds(cidr: Cidr): { first: bigint; last: bigint } {
  const first = ipToBigInt(cidr.network);
  const size = 1n << BigInt(BITS[cidr.family] - cidr.prefix);
  return { first, last: first + size - 1n };
}

/** True when `address` (any text) is a valid address of the network's family inside it. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  if (ipFamily(address) !== cidr.family) return false;
  const value = ipToBigInt(address);
  const { first, last } = cidrBounds(cidr);
  return value >= first && value <= last;
}

/**
 * Lowest and highest address a host may have: IPv4 leaves out the network and broadcast
 * addresses (except in /31 and /32), IPv6 leaves out the subnet-router anycast address.
 */
export function hostBounds(cidr: Cidr): { first: bigint; last: bigint } {
  const { first, last } = cidrBounds(cidr);
  if (cidr.family === 4 && cidr.prefix >= 31) return { first, last };
  if (cidr.family === 4) return { first: first + 1n, last: last - 1n };
  return cidr.prefix === 128 ? { first, last } : { first: first + 1n, last };
}

/** Number of host addresses in the network. */
export function hostCount(cidr: Cidr): bigint {
  const { first, last } = hostBounds(cidr);
  return last >= first ? last - first + 1n : 0n;
}
