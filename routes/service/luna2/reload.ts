import { startTemplateReload } from "../../../lib/dhcp-dns-regeneration.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Compile the templates again and regenerate DHCP and DNS with them",
    responses: { 200: "job started or joined: message and request_id for /service/status", 401: "missing or invalid token" },
  },
  async ({ services }) => {
    const started = await startTemplateReload(services, services.config.api.username);
    return json({ message: started.message, request_id: started.requestId });
  },
);
