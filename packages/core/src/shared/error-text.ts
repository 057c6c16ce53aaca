/**
 * One line describing an unknown thrown value (`Name: message` for errors), at most `max` characters: what
 * health reports, dead-letter reasons and stored `last_error` columns carry.
 */
export function errorText(error: unknown, max = 2000): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > max ? text.slice(0, max) : text;
}
