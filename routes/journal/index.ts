import * as v from "valibot";
import { insertJournal, JournalTask } from "../../lib/journal.ts";
import { handler, message } from "../../lib/route.ts";

// One task or a list of tasks; a single task is checked as a list of one.
const JournalBody = v.strictObject({
  journal: v.pipe(v.unknown(), v.transform((value) => (Array.isArray(value) ? value : [value])), v.array(JournalTask)),
});

export const POST = handler(
  {
    auth: "admin",
    summary: "Queue one task or a list of tasks for controllers",
    body: JournalBody,
    responses: { 201: "queued", 400: "invalid task, naming the field" },
  },
  async ({ services, body }) => {
    await insertJournal(services.db, body.journal, null, services.clock.now());
    return message("success", 201);
  },
);
