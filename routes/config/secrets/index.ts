import { getAllSecrets } from "../../../lib/node-secrets.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the secrets of every node and group", responses: { 200: "secrets", 404: "no secrets at all" } },
  async ({ services }) => json({ config: { secrets: await getAllSecrets(services.db.orm, services.secrets) } }),
);
