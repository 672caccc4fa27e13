/**
 * What an entry gets just before it is stored (`Variants.store`), switched in at construction
 * only when something needs it: the tags of the per-route rule that applies, and the CDN's tag
 * header (`cdn`). Idempotent: a revalidated or peer entry stored again comes out the same.
 */
import type { Entry } from '../entry.js';
import type { RuleSet } from '../rules.js';

/** Adds to an entry, in place, what is stored with it. */
export type EntryDecorator = (entry: Entry) => void;

/** Unions `more` into `entry.tags` (a new array; the old one may be shared with a stored copy). */
function addTags(entry: Entry, more: readonly string[]): void {
  const missing = more.filter((t) => !entry.tags.includes(t));
  if (missing.length > 0) entry.tags = [...entry.tags, ...missing];
}

/**
 * The decorator for these rules and this tag header writer, or undefined when neither has
 * anything to add (no rule has tags, no CDN): `Variants.store` then calls nothing.
 */
export function entryDecorator(rules: RuleSet | undefined, outgoing: EntryDecorator | undefined): EntryDecorator | undefined {
  const tagging = rules !== undefined && rules.rules.some((r) => r.tags.length > 0) ? rules : undefined;
  if (tagging === undefined) return outgoing;
  return (entry) => {
    const rule = tagging.match('GET', entry.host, entry.url);
    if (rule !== undefined && rule.tags.length > 0) addTags(entry, rule.tags);
    outgoing?.(entry);
  };
}
