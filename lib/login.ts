import { constantTimeEqual } from "./auth.ts";
import type { Config } from "./config.ts";
import { unauthorized } from "./errors.ts";

/**
 * Checks a username and password against [API] USERNAME and PASSWORD in constant time. Throws
 * `unauthorized` with the original daemon's messages; the password never appears in them.
 */
export function checkApiCredentials(config: Config, username: string | undefined, password: string | undefined): void {
  if (!username && !password) throw unauthorized("Please provide the username and password");
  if (!username) throw unauthorized("Username Is Required");
  if (!password) throw unauthorized("Password Is Required");
  const userMatches = constantTimeEqual(username, config.api.username);
  const passwordMatches = constantTimeEqual(password, config.api.password);
  if (!userMatches) throw unauthorized(`User ${username} does not exist`);
  if (!passwordMatches) throw unauthorized("Incorrect password ******, check luna.ini");
}
