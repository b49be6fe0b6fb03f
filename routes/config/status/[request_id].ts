import { readJobStatus } from "../../../lib/jobs.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Status lines of a job not read yet; 404 once the job ended and every line was read",
    responses: { 200: "unread lines joined with ;;", 404: "no data for this request" },
  },
  async ({ services, params }) => json(await readJobStatus(services.db, params.request_id)),
);
