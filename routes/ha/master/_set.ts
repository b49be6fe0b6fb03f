import { unavailable } from "../../../lib/errors.ts";
import { handler, message } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Take the master lease now", responses: { 200: "this controller is master", 503: "the lease cannot be taken" } },
  async ({ services }) => {
    if (!services.config.ha.enabled) throw unavailable("Cannot set the master role: HA is not enabled in [HA] ENABLED");
    await services.ha.takeover();
    return message("current role set to master");
  },
);
