import { conflict, invalid } from "./errors.ts";
import { bigIntToIp, type Cidr, cidrBounds, formatCidr, hostBounds, hostCount, type IpFamily, ipToBigInt } from "./ip.ts";

/** An inclusive range of addresses as integers. */
export interface AddressRange {
  first: bigint;
  last: bigint;
}

/** One family of a network as it will be after a change. */
export interface FamilyLayout {
  cidr: Cidr | null;
  /** DHCP range that static addresses must stay out of, or null. */
  range: AddressRange | null;
  gateway: bigint | null;
}

/** An ip_address row reduced to its address of one family. */
export interface PlannedHolder {
  id: number;
  address: string | null;
  /** Key that carries a new address for this controller (`controller` or the hostname with '-' as '_'), or null for other holders. */
  controllerKey: string | null;
  /** E.g. `interface BOOTIF of node "node001"`. */
  description: string;
}

/** Input of `planAddresses` for one family. */
export interface RenumberRequest {
  family: IpFamily;
  networkName: string;
  before: Cidr | null;
  after: FamilyLayout;
  holders: PlannedHolder[];
  /** New controller addresses by ip_address row id; each is of this family. */
  controllerAddresses: Map<number, string>;
  /** Unexpired reservations that stay valid after the change. */
  reserved: Set<bigint>;
}

/**
 * Works out the address of every row of one family after a network change. A row keeps its
 * host part (offset from the network address) when that lands on a free host address outside
 * the DHCP range. Otherwise it gets the lowest free host address other than the gateway.
 * A controller never gets an address picked for it: it keeps its host part or takes the one
 * sent under its key.
 * Returns only the rows whose address changes (null when the family is removed). Throws
 * 400 when the rows do not fit or a controller needs an address, and 409 when a sent
 * controller address is held by another row; nothing is written in either case.
 */
export function planAddresses(request: RenumberRequest): Map<number, string | null> {
  const { family, after, holders } = request;
  const changes = new Map<number, string | null>();
  const addressed = holders.filter((holder) => holder.address !== null);

  if (after.cidr === null) {
    for (const holder of addressed) changes.set(holder.id, null);
    return changes;
  }
  const cidr = after.cidr;
  const bounds = hostBounds(cidr);
  const claimed = new Set<bigint>(request.reserved);
  // Allocation skips the gateway, but a row that already has the gateway address keeps it,
  // because the router may be a listed device.
  const isBlocked = (value: bigint) =>
    value < bounds.first ||
    value > bounds.last ||
    (after.range !== null && value >= after.range.first && value <= after.range.last) ||
    claimed.has(value);

  const sent = new Map<bigint, PlannedHolder>();
  for (const holder of holders) {
    const address = request.controllerAddresses.get(holder.id);
    if (address === undefined) continue;
    const value = ipToBigInt(address);
    if (value < bounds.first || value > bounds.last) {
      throw invalid(`Invalid request: ${holder.controllerKey} address ${address} is not a host address of network "${request.networkName}" (${formatCidr(cidr)})`);
    }
    if (isBlocked(value)) {
      throw invalid(`Invalid request: ${holder.controllerKey} address ${address} is inside the DHCP range or reserved in network "${request.networkName}"`);
    }
    claimed.add(value);
    sent.set(value, holder);
    if (address !== holder.address) changes.set(holder.id, address);
  }

  // Controllers go first so a node never takes the address a controller keeps.
  const ordered = [...addressed].sort((left, right) => Number(right.controllerKey !== null) - Number(left.controllerKey !== null));
  const homeless: PlannedHolder[] = [];
  const strandedControllers: string[] = [];
  for (const holder of ordered) {
    if (request.controllerAddresses.has(holder.id)) continue;
    const candidate = translate(ipToBigInt(holder.address!), request.before, cidr);
    const owner = sent.get(candidate);
    if (owner !== undefined && holder.address === bigIntToIp(candidate, family)) {
      // Taking an address a row keeps would move that row without anyone asking for it.
      throw conflict(`Address ${holder.address} in network "${request.networkName}" is already used by ${holder.description}: send another ${owner.controllerKey} address`);
    }
    if (!isBlocked(candidate)) {
      claimed.add(candidate);
      const address = bigIntToIp(candidate, family);
      if (address !== holder.address) changes.set(holder.id, address);
    } else if (holder.controllerKey !== null) {
      strandedControllers.push(`${holder.description} (${holder.address}): send a new address under key "${holder.controllerKey}"`);
    } else {
      homeless.push(holder);
    }
  }
  if (strandedControllers.length > 0) {
    throw invalid(`Invalid request: controller address does not fit network "${request.networkName}" (${formatCidr(cidr)}): ${strandedControllers.join(", ")}`);
  }

  let cursor = bounds.first;
  for (const holder of homeless) {
    while (cursor <= bounds.last && (isBlocked(cursor) || cursor === after.gateway)) cursor++;
    if (cursor > bounds.last) throw capacityError(request, addressed.length);
    claimed.add(cursor);
    changes.set(holder.id, bigIntToIp(cursor, family));
  }
  return changes;
}

/** Moves `value` to the same offset from the new network address; unchanged when there was no old network. */
function translate(value: bigint, before: Cidr | null, after: Cidr): bigint {
  if (before === null) return value;
  return cidrBounds(after).first + (value - cidrBounds(before).first);
}

function capacityError(request: RenumberRequest, inUse: number) {
  const cidr = request.after.cidr!;
  const rangeSize = request.after.range ? request.after.range.last - request.after.range.first + 1n : 0n;
  return invalid(
    `Invalid request: network ${formatCidr(cidr)} has ${hostCount(cidr)} host addresses and ${rangeSize} of them in the DHCP range, ` +
      `which leaves no room for the ${inUse} addresses in use in network "${request.networkName}": choose a shorter prefix or a smaller DHCP range`,
  );
}

/**
 * Places a DHCP range in a changed network. The range stays when it still fits, or else keeps
 * its offsets when those fit. Otherwise a range of the same size starts half-way through the
 * host addresses. It shrinks to a tenth of them when it would take more than half, unless
 * nodes take their addresses from the pool. Returns null when no range was set.
 */
export function fitDhcpRange(
  range: { begin: string; end: string } | null,
  before: Cidr | null,
  after: Cidr,
  nodesInPool: boolean,
): { begin: string; end: string } | null {
  if (range === null) return null;
  const { first, last } = hostBounds(after);
  const begin = ipToBigInt(range.begin);
  const end = ipToBigInt(range.end);
  const fits = (low: bigint, high: bigint) => low >= first && high <= last && low <= high;
  if (fits(begin, end)) return range;

  if (before !== null) {
    const low = translate(begin, before, after);
    const high = translate(end, before, after);
    if (fits(low, high)) return { begin: bigIntToIp(low, after.family), end: bigIntToIp(high, after.family) };
  }

  const hosts = hostCount(after);
  if (hosts === 0n) return null;
  let size = end - begin;
  if (size > hosts / 2n && !nodesInPool) size = hosts / 10n;
  let low = first + hosts / 2n - 4n;
  if (low < first) low = first;
  let high = low + size;
  if (high > last) high = last;
  return { begin: bigIntToIp(low, after.family), end: bigIntToIp(high, after.family) };
}
