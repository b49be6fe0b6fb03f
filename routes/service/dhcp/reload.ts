import { startServiceReload } from "../../../lib/dhcp-dns-regeneration.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Regenerate, check and install the DHCP configuration, then reload the DHCP service",
    responses: { 200: "job started or joined: message and request_id for /service/status", 401: "missing or invalid token" },
  },
  async ({ services }) => {
    const started = await startServiceReload(services, "dhcp", services.config.api.username);
    return json({ message: started.message, request_id: started.requestId });
  },
);
