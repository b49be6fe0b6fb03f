/** File name endings of OS image archives, which are served only with a token. */
export const PROTECTED_EXTENSIONS = [".gz", ".tar", ".bz", ".bz2", ".zst", ".tzst", ".torrent"];

/** True when the file a URI or name points at is an image archive that needs a token. */
export function requiresToken(uriOrName: string): boolean {
  const path = uriOrName.split(/[?#]/, 1)[0].toLowerCase();
  return PROTECTED_EXTENSIONS.some((extension) => path.endsWith(extension));
}
