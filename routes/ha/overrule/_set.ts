import { handler, noContent } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Allow this controller to take the master lease without a current replica (disaster recovery)", responses: { 204: "overrule set" } },
  ({ services }) => {
    services.ha.setOverrule();
    return noContent();
  },
);
