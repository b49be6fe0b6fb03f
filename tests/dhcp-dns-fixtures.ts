import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq, inArray } from "drizzle-orm";
import type { Database } from "../lib/db/database.ts";
import { ipAddress, network, node, nodeGroup, nodeInterface } from "../lib/db/schema/index.ts";
import { bigIntToIp, ipToBigInt } from "../lib/ip.ts";

/** Rows per INSERT statement, well below SQLite's limit of bound parameters. */
const CHUNK = 400;

/** Formats `index` as the last three octets of a MAC address behind `prefix` (`aa:bb:cc`). */
export function macFor(prefix: string, index: number): string {
  const bytes = [(index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff];
  return `${prefix}:${bytes.map((byte) => byte.toString(16).padStart(2, "0")).join(":")}`;
}

/**
 * Inserts `count` nodes named `<prefix><nnnnn>` into group compute-group with bulk inserts. Each
 * node gets a BOOTIF interface in network cluster and a BMC interface in network ipmi, each with
 * a MAC address. Node n (from 0) gets host number `firstHost + n` in both networks.
 */
export async function insertNodes(db: Database, options: { count: number; prefix: string; firstHost: number; macPrefix?: string }): Promise<void> {
  const macPrefix = options.macPrefix ?? "02:00:00";
  await db.write(async (tx) => {
    const [group] = await tx.select().from(nodeGroup).where(eq(nodeGroup.name, "compute-group"));
    const networks = await tx.select().from(network).where(inArray(network.name, ["cluster", "ipmi"]));
    const cluster = networks.find((row) => row.name === "cluster")!;
    const ipmi = networks.find((row) => row.name === "ipmi")!;
    for (let start = 0; start < options.count; start += CHUNK) {
      const indexes = Array.from({ length: Math.min(CHUNK, options.count - start) }, (_, offset) => start + offset);
      const nodes = await tx
        .insert(node)
        .values(indexes.map((index) => ({ name: `${options.prefix}${String(index + 1).padStart(5, "0")}`, group_id: group.id })))
        .returning({ id: node.id });
      const interfaces = await tx
        .insert(nodeInterface)
        .values(nodes.flatMap((row, offset) => [
          { node_id: row.id, interface: "BOOTIF", macaddress: macFor(macPrefix, 2 * indexes[offset]) },
          { node_id: row.id, interface: "BMC", macaddress: macFor(macPrefix, 2 * indexes[offset] + 1) },
        ]))
        .returning({ id: nodeInterface.id, interface: nodeInterface.interface });
      await tx.insert(ipAddress).values(interfaces.map((row, position) => {
        const index = indexes[Math.floor(position / 2)];
        const base = row.interface === "BOOTIF" ? cluster.network! : ipmi.network!;
        return {
          network_id: row.interface === "BOOTIF" ? cluster.id : ipmi.id,
          ipaddress: bigIntToIp(ipToBigInt(base) + BigInt(options.firstHost + index), 4),
          node_interface_id: row.id,
        };
      }));
    }
  });
}

/** Gives the BOOTIF and BMC interfaces of the bootstrapped nodes node001..node004 MAC addresses. */
export async function setBootstrapMacs(db: Database): Promise<void> {
  await db.write(async (tx) => {
    const rows = await tx
      .select({ id: nodeInterface.id, name: node.name, interface: nodeInterface.interface })
      .from(nodeInterface)
      .innerJoin(node, eq(node.id, nodeInterface.node_id));
    for (const row of rows) {
      const number = Number(row.name.slice(-3));
      const mac = `aa:bb:cc:dd:${row.interface === "BOOTIF" ? "ee" : "ff"}:${number.toString(16).padStart(2, "0")}`;
      await tx.update(nodeInterface).set({ macaddress: mac }).where(eq(nodeInterface.id, row.id));
    }
  });
}

/**
 * Writes a stand-in for systemctl into `directory`: it appends `<unix time> <argv>` to
 * calls.log and exits with the code in is-active.exit (default 0) for `is-active`, else 0.
 */
export function writeFakeServiceCommand(directory: string): { path: string; calls(): string[][]; setActiveExit(code: number): void } {
  const path = join(directory, "fake-systemctl");
  const log = join(directory, "calls.log");
  const exitFile = join(directory, "is-active.exit");
  writeFileSync(path, [
    "#!/bin/sh",
    `echo "$(date +%s.%N) $*" >> '${log}'`,
    'if [ "$1" = is-active ]; then',
    `  code=$(cat '${exitFile}' 2>/dev/null || echo 0)`,
    '  if [ "$code" = 0 ]; then echo active; else echo failed; fi',
    '  exit "$code"',
    "fi",
    "exit 0",
    "",
  ].join("\n"));
  chmodSync(path, 0o755);
  return {
    path,
    calls() {
      let text = "";
      try {
        text = readFileSync(log, "utf8");
      } catch {
        return [];
      }
      return text.trim().split("\n").filter(Boolean).map((line) => line.split(" "));
    },
    setActiveExit(code: number) {
      writeFileSync(exitFile, String(code));
    },
  };
}
