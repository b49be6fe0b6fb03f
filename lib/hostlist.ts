import { invalid } from "./errors.ts";

/** Maximum number of hosts one hostlist may expand to; checked before anything is expanded. */
export const MAX_HOSTLIST_HOSTS = 10_000;

/** Characters allowed outside brackets: the characters of host names. */
const NAME_CHARACTER = /[A-Za-z0-9._-]/;

/** Digits allowed in one range bound, so every number stays an exact integer. */
const MAX_BOUND_DIGITS = 9;

/** One bracket group: its numbers, each already formatted with its padding. */
type Group = string[];

/** A hostlist item: literal text and bracket groups in order. */
type Part = { text: string } | { group: Group };

/**
 * Expands a hostlist in the Slurm and ClusterShell syntax into host names, in order and without
 * duplicates: `node[001-003,7],gpu[1-2]n[1-2]` gives node001, node002, node003, node007, gpu1n1,
 * gpu1n2, gpu2n1, gpu2n2. Zero padding follows the start of each range, so `n1` and `n01` are
 * different hosts. Throws `invalid` naming the problem for empty, reversed or malformed ranges
 * and for lists longer than `maxHosts`.
 */
export function expandHostlist(hostlist: string, maxHosts = MAX_HOSTLIST_HOSTS): string[] {
  if (hostlist.length === 0) throw invalid('Invalid hostlist "": it is empty');

  const items = splitTopLevel(hostlist);
  const parsed = items.map((item) => parseItem(hostlist, item, maxHosts));
  const total = parsed.reduce((sum, parts) => sum + countHosts(parts), 0);
  if (total > maxHosts) {
    throw invalid(`Invalid hostlist "${shorten(hostlist)}": it expands to ${total} hosts, more than the maximum of ${maxHosts}`);
  }

  const hosts = new Set<string>();
  for (const parts of parsed) for (const host of expandParts(parts)) hosts.add(host);
  return [...hosts];
}

/** Splits at commas outside brackets; `[` and `]` must pair up without nesting. */
function splitTopLevel(hostlist: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < hostlist.length; i++) {
    const character = hostlist[i];
    if (character === "[") {
      if (depth > 0) throw malformed(hostlist, `nested "[" at position ${i + 1}`);
      depth = 1;
    } else if (character === "]") {
      if (depth === 0) throw malformed(hostlist, `"]" without "[" at position ${i + 1}`);
      depth = 0;
    } else if (character === "," && depth === 0) {
      items.push(hostlist.slice(start, i));
      start = i + 1;
    }
  }
  if (depth > 0) throw malformed(hostlist, `"[" without "]"`);
  items.push(hostlist.slice(start));
  return items;
}

function parseItem(hostlist: string, item: string, maxHosts: number): Part[] {
  if (item.length === 0) throw malformed(hostlist, "it contains an empty host name");

  const parts: Part[] = [];
  let i = 0;
  while (i < item.length) {
    if (item[i] === "[") {
      const end = item.indexOf("]", i);
      parts.push({ group: parseGroup(hostlist, item.slice(i + 1, end), maxHosts) });
      i = end + 1;
      continue;
    }
    let end = i;
    while (end < item.length && item[end] !== "[") {
      if (!NAME_CHARACTER.test(item[end])) throw malformed(hostlist, `invalid character "${item[end]}" in "${item}"`);
      end++;
    }
    parts.push({ text: item.slice(i, end) });
    i = end;
  }
  if (!parts.some((part) => "text" in part)) throw malformed(hostlist, `"${item}" has no host name outside brackets`);
  return parts;
}

/** Parses the inside of one bracket pair: `1-3,5,007-010`. */
function parseGroup(hostlist: string, body: string, maxHosts: number): Group {
  if (body.length === 0) throw invalid(`Invalid hostlist "${shorten(hostlist)}": empty range "[]"`);

  const numbers: string[] = [];
  for (const element of body.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(element);
    if (!match) throw malformed(hostlist, `invalid range "${element}" in "[${body}]": use N or N-M with digits only`);

    const [, startText, endText = startText] = match;
    if (startText.length > MAX_BOUND_DIGITS || endText.length > MAX_BOUND_DIGITS) {
      throw malformed(hostlist, `range "${element}" has more than ${MAX_BOUND_DIGITS} digits`);
    }
    const start = Number(startText);
    const end = Number(endText);
    if (end < start) throw invalid(`Invalid hostlist "${shorten(hostlist)}": reversed range "${element}": ${endText} is below ${startText}`);
    if (numbers.length + end - start + 1 > maxHosts) {
      throw invalid(`Invalid hostlist "${shorten(hostlist)}": "[${shorten(body)}]" has more than the maximum of ${maxHosts} hosts`);
    }

    // The start value sets the width: [001-100] pads to 3 digits, [1-100] does not pad.
    const width = startText.length;
    for (let value = start; value <= end; value++) numbers.push(String(value).padStart(width, "0"));
  }
  return numbers;
}

function countHosts(parts: Part[]): number {
  return parts.reduce((product, part) => ("group" in part ? product * part.group.length : product), 1);
}

function expandParts(parts: Part[]): string[] {
  let hosts = [""];
  for (const part of parts) {
    if ("text" in part) hosts = hosts.map((host) => host + part.text);
    else hosts = hosts.flatMap((host) => part.group.map((number) => host + number));
  }
  return hosts;
}

function malformed(hostlist: string, problem: string) {
  return invalid(`Invalid hostlist "${shorten(hostlist)}": ${problem}`);
}

/** Keeps error messages short when a client sends a huge hostlist. */
function shorten(hostlist: string): string {
  return hostlist.length > 200 ? `${hostlist.slice(0, 200)}...` : hostlist;
}

/**
 * Folds host names into a compact hostlist, the inverse of `expandHostlist`: the last number in
 * each name becomes a range, so node001, node002, node003, node007 give `node[001-003,007]`.
 * Names whose number is zero-padded fold only with names of the same width.
 */
export function foldHostlist(hosts: Iterable<string>): string {
  const groups = new Map<string, { prefix: string; suffix: string; width: number; numbers: Set<number> }>();
  const plain = new Set<string>();
  for (const host of hosts) {
    const match = /^(.*?)(\d+)(\D*)$/.exec(host);
    if (!match) {
      plain.add(host);
      continue;
    }
    const [, prefix, digits, suffix] = match;
    // Unpadded numbers of any length fold together; padded ones keep their width.
    const width = digits.length > 1 && digits.startsWith("0") ? digits.length : 0;
    const key = `${prefix}\u0000${suffix}\u0000${width}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { prefix, suffix, width, numbers: new Set() }));
    group.numbers.add(Number(digits));
  }

  const folded: string[] = [...plain].sort();
  const ordered = [...groups.values()].sort((a, b) => a.prefix.localeCompare(b.prefix) || a.suffix.localeCompare(b.suffix) || a.width - b.width);
  for (const { prefix, suffix, width, numbers } of ordered) {
    const ranges = toRanges([...numbers].sort((a, b) => a - b), width);
    const single = ranges.length === 1 && !ranges[0].includes("-");
    folded.push(single ? `${prefix}${ranges[0]}${suffix}` : `${prefix}[${ranges.join(",")}]${suffix}`);
  }
  return folded.join(",");
}

function toRanges(sorted: number[], width: number): string[] {
  const format = (value: number) => String(value).padStart(width, "0");
  const ranges: string[] = [];
  let start = sorted[0];
  let previous = start;
  for (const value of [...sorted.slice(1), Number.NaN]) {
    if (value === previous + 1) {
      previous = value;
      continue;
    }
    ranges.push(start === previous ? format(start) : `${format(start)}-${format(previous)}`);
    start = previous = value;
  }
  return ranges;
}
