import { eq } from "drizzle-orm";
import { constantTimeEqual } from "./auth.ts";
import { node } from "./db/schema/index.ts";
import { unauthorized } from "./errors.ts";
import { checkApiCredentials } from "./login.ts";
import type { Services } from "./services.ts";

/**
 * Returns a token for POST /tpm/{node}. With username and password it is an admin token, as
 * from /token, and a supplied TPM hash is registered on the node. With only a TPM hash that
 * matches the node's registered one it is a provision token for that node, never an admin token.
 */
export async function loginWithTpm(
  services: Services,
  nodeName: string,
  body: { tpm_sha256?: string; username?: string; password?: string },
): Promise<string> {
  const [row] = await services.db.orm.select({ id: node.id, tpm: node.tpm_sha256 }).from(node).where(eq(node.name, nodeName));

  if (body.username !== undefined || body.password !== undefined) {
    checkApiCredentials(services.config, body.username, body.password);
    if (row && body.tpm_sha256) {
      await services.db.write((tx) => tx.update(node).set({ tpm_sha256: body.tpm_sha256 }).where(eq(node.id, row.id)));
    }
    return services.tokens.issueAdmin();
  }

  if (!body.tpm_sha256) throw unauthorized("Login Required: send username and password, or tpm_sha256");
  if (!row || !row.tpm || !constantTimeEqual(body.tpm_sha256, row.tpm)) {
    throw unauthorized(`Invalid TPM information for node ${nodeName}`);
  }
  return services.tokens.issueProvision(nodeName);
}
