/**
 * Returns the text a value encodes when it is base64 of printable text, else null. luna2-cli
 * sends edited fields (kerneloptions, scripts, grab lists) base64-encoded and the original
 * daemon stored them as sent, so stored values may be either form.
 */
export function decodeBase64Text(value: string): string | null {
  const trimmed = value.trim();
  if (trimmed === "" || trimmed.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return null;
  const decoded = Buffer.from(trimmed, "base64").toString("utf8");
  return /^[\x20-\x7e\t\r\n]+$/.test(decoded) ? decoded : null;
}
