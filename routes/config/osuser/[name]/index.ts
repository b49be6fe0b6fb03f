import * as v from "valibot";
import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { text } from "../../../../lib/fields.ts";
import { checkOsAccountName, getOsAccount, osAccountName, osAccountNames, osIdNumber, saveOsUser } from "../../../../lib/os-accounts.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

/** obol skips empty values, so an empty string could not clear anything and is rejected. */
const value = (max: number) => v.pipe(text(max), v.minLength(1, "must not be empty because obol cannot clear a field"));

const absolutePath = v.pipe(value(4096), v.check((path) => path.startsWith("/"), "must be an absolute path"));

// obol reads the password as one line from stdin, so line breaks cannot be passed on.
const password = v.pipe(
  v.string(),
  v.minLength(1, "must not be empty"),
  v.maxLength(1024, "must be at most 1024 characters"),
  v.check((candidate) => !/[\r\n\u0000]/.test(candidate), "must not contain line breaks or NUL characters"),
);

const shadowExpire = v.pipe(
  v.union([v.number(), v.string()], "must be a whole number of days"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const days = typeof dataset.value === "number" ? dataset.value : /^-?\d+$/.test(dataset.value) ? Number(dataset.value) : Number.NaN;
    if (!Number.isInteger(days) || days < -1 || days > 999_999) {
      addIssue({ message: `must be a number of days from 0 to 999999, or -1 for never, not "${dataset.value}"` });
      return NEVER;
    }
    return days;
  }),
);

const UserFields = v.strictObject({
  userPassword: v.optional(password),
  cn: v.optional(value(255)),
  sn: v.optional(value(255)),
  givenName: v.optional(value(255)),
  groupname: v.optional(osAccountName("groupname")),
  uidNumber: v.optional(osIdNumber),
  gidNumber: v.optional(osIdNumber),
  mail: v.optional(value(255)),
  telephoneNumber: v.optional(value(64)),
  loginShell: v.optional(absolutePath),
  homeDirectory: v.optional(absolutePath),
  memberOf: v.optional(osAccountNames("memberOf")),
  shadowExpire: v.optional(shadowExpire),
});

// The specification lists no GET here; the original daemon serves it and the TrinityX Open
// OnDemand account pages read one account with it.
export const GET = handler(
  { auth: "admin", summary: "Show one OS user through obol", responses: { 200: "user", 404: "unknown user", 503: "obol failed or is missing" } },
  async ({ services, params }) => {
    checkOsAccountName("user", params.name);
    return json({ config: { osuser: { [params.name]: await getOsAccount(services, "user", params.name) } } });
  },
);

export const POST = handler(
  {
    auth: "admin",
    summary: "Create or change an OS user through obol; the password goes to obol on stdin",
    body: configEnvelope("osuser", UserFields),
    responses: { 201: "user created", 204: "user changed", 400: "invalid value or rejected by obol", 503: "obol failed or is missing" },
  },
  async ({ services, params, body }) => {
    checkOsAccountName("user", params.name);
    const changes = unwrapEnvelope(body, "osuser", params.name);
    const outcome = await saveOsUser(services, params.name, changes);
    return outcome === "created" ? message(`Created OS user "${params.name}"`, 201) : noContent();
  },
);
