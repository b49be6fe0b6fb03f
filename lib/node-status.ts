import { eq } from "drizzle-orm";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { node, nodeStatus } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";

/**
 * Installer states that GET reports with status 200. `install.finalizing` is here although the
 * original daemon also lists it as an error state: its good list is checked first, so 200 wins.
 */
export const INSTALL_SUCCESS_STATES: readonly string[] = [
  "install.discovered",
  "install.rendered",
  "install.downloaded",
  "install.started",
  "install.completed",
  "install.prescript",
  "install.partscript",
  "install.postscript",
  "install.roles",
  "install.image",
  "install.finalizing",
  "install.success",
];

/** Installer states that GET reports with status 500. */
export const INSTALL_ERROR_STATES: readonly string[] = ["install.error"];

/**
 * Maximum length of a state. The installer's longest state, `install.partscript`, has 18
 * characters; 64 leaves room for states that plugins or operators send.
 */
export const STATE_MAX_LENGTH = 64;

/** Maximum length of the optional free-text status that comes with a state. */
export const STATUS_MAX_LENGTH = 2048;

/** State a node last reported, as GET /monitor/status/{node} shows it. */
export interface NodeStatusView {
  /** 200 or 500 for known installer states, else the stored status text (null when none was sent). */
  status: number | string | null;
  state: string | null;
}

async function findNodeId(db: Orm | Transaction, name: string): Promise<number> {
  const [row] = await db.select({ id: node.id }).from(node).where(eq(node.name, name));
  if (!row) throw notFound(`Node "${name}" does not exist`);
  return row.id;
}

/**
 * Returns the state a node last reported in the `{"monitor":{"status":{"<node>":{...}}}}`
 * envelope. A node that never reported has state and status null. Throws `notFound` for an
 * unknown node.
 */
export async function getNodeStatus(db: Orm, name: string): Promise<{ monitor: { status: Record<string, NodeStatusView> } }> {
  const nodeId = await findNodeId(db, name);
  const [row] = await db.select().from(nodeStatus).where(eq(nodeStatus.node_id, nodeId));
  const state = row?.state ?? null;
  let status: NodeStatusView["status"] = row?.status ?? null;
  if (state !== null && INSTALL_SUCCESS_STATES.includes(state)) status = 200;
  else if (state !== null && INSTALL_ERROR_STATES.includes(state)) status = 500;
  return { monitor: { status: { [name]: { status, state } } } };
}

/**
 * Stores the state a node reports, replacing the previous state and status; a report without
 * status text clears the old text. `updatedMs` is the Unix time in milliseconds. Throws
 * `notFound` for an unknown node.
 */
export async function setNodeStatus(db: Database, name: string, report: { state: string; status?: string | null }, updatedMs: number): Promise<void> {
  await db.write(async (tx) => {
    const nodeId = await findNodeId(tx, name);
    const values = { state: report.state, status: report.status ?? null, updated: updatedMs };
    await tx
      .insert(nodeStatus)
      .values({ node_id: nodeId, ...values })
      .onConflictDoUpdate({ target: nodeStatus.node_id, set: values });
  });
}
