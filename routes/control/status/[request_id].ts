import { readControlStatus } from "../../../lib/power.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Results of a bulk power job not read yet, grouped as luna2-cli reads them; 404 once the job ended and every result was read",
    responses: { 200: "control.power.{ok,on,off} and control.failed", 404: "no data for this request" },
  },
  async ({ services, params }) => json(await readControlStatus(services.db, params.request_id)),
);
