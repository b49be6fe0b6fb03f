import { handler, message } from "../lib/route.ts";

export const GET = handler({ auth: "none", summary: "Liveness check" }, () => message("pong"));
