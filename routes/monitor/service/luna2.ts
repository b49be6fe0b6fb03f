import { handler, json } from "../../../lib/route.ts";
import { getServiceStatus } from "../../../lib/service-control.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Report whether the luna2 service runs",
    responses: { 200: "OK, running", 500: "the service is not running", 503: "the state cannot be read" },
  },
  async ({ services }) => {
    const result = await getServiceStatus(services, "luna2");
    return json({ monitor: { Service: { luna2: result.text } } }, result.status);
  },
);
