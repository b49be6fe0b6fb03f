import { listControllerStates } from "../../lib/ha-controllers.ts";
import { handler, json } from "../../lib/route.ts";

export const GET = handler({ auth: "admin", summary: "Every controller with its endpoint, last heartbeat and role" }, async ({ services }) =>
  json({ message: await listControllerStates(services) }));
