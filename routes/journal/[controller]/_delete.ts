import { deleteJournal } from "../../../lib/journal.ts";
import { handler, noContent } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Remove every pending journal task of one controller", responses: { 204: "removed" } },
  async ({ services, params }) => {
    await deleteJournal(services.db, params.controller);
    return noContent();
  },
);
