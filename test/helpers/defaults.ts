/**
 * The one reader of documented defaults: the `@default` text of each field of an option
 * interface, parsed as a literal, for tests that compare the docs with `DEFAULTS`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** Parses one JavaScript literal (number, string, array, object, true/false/null/undefined) at the start of `text`. */
export function parseLeadingLiteral(text: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') return (i++, out);
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') return (i++, out);
          continue;
        }
        if (text[i] === ']') return (i++, out);
        throw new Error(`bad array at ${i} in ${text}`);
      }
    }
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') return (i++, out);
      for (;;) {
        ws();
        const m = /^[A-Za-z_$][\w$]*/.exec(text.slice(i));
        if (!m) throw new Error(`bad key at ${i} in ${text}`);
        i += m[0].length;
        ws();
        if (text[i] !== ':') throw new Error(`expected : at ${i} in ${text}`);
        i++;
        out[m[0]] = value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') return (i++, out);
          continue;
        }
        if (text[i] === '}') return (i++, out);
        throw new Error(`bad object at ${i} in ${text}`);
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end === -1) throw new Error(`unterminated string in ${text}`);
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const num = /^-?\d[\d_]*(\.\d+)?(e[+-]?\d+)?/i.exec(text.slice(i));
    if (num) {
      i += num[0].length;
      return Number(num[0].replace(/_/g, ''));
    }
    for (const [word, v] of [['undefined', undefined], ['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    throw new Error(`no literal at ${i} in ${JSON.stringify(text)}`);
  };
  return value();
}

/** The `@default` text of each property of an interface in a TypeScript source, by property name. */
export function documentedDefaults(source: string, interfaceName: string): Map<string, string> {
  const start = source.indexOf(`export interface ${interfaceName} {`);
  assert.notEqual(start, -1, `interface ${interfaceName} not found`);
  const end = source.indexOf('\n}', start);
  const body = source.slice(start, end);
  const out = new Map<string, string>();
  const re = /\/\*\*([\s\S]*?)\*\/\s*(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*:/g;
  for (let m = re.exec(body); m !== null; m = re.exec(body)) {
    const doc = m[1]!
      .split('\n')
      .map((line) => line.replace(/^\s*\*\s?/, ''))
      .join('\n');
    const at = doc.indexOf('@default');
    if (at === -1) {
      out.set(m[2]!, '');
      continue;
    }
    // The default runs to the next tag or the end of the comment; continuation lines are joined.
    const rest = doc.slice(at + '@default'.length);
    const next = rest.search(/\n\s*@\w/);
    out.set(m[2]!, (next === -1 ? rest : rest.slice(0, next)).replace(/\s+/g, ' ').trim());
  }
  return out;
}

/** DEFAULTS as plain values, for deep comparison with parsed literals. */
export const plain = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** The source of a file under `src/` (e.g. `'options/types.ts'`). */
export function sourceOf(file: string): string {
  return readFileSync(new URL(`../../src/${file}`, import.meta.url), 'utf8');
}

/**
 * Asserts that every field of `interfaceName` in `src/<file>` documents a `@default` equal to
 * the field of `defaults`, and that the interface and `defaults` name the same fields.
 */
export function assertDocumentedDefaults(file: string, interfaceName: string, defaults: object, label: string): void {
  const docs = documentedDefaults(sourceOf(file), interfaceName);
  assert.deepEqual([...docs.keys()].sort(), Object.keys(defaults).sort(), `${interfaceName} fields and ${label} keys differ`);
  for (const [field, text] of docs) {
    assert.notEqual(text, '', `${label}.${field} has no @default`);
    const actual = plain((defaults as Record<string, unknown>)[field]);
    assert.deepEqual(parseLeadingLiteral(text), actual, `${label}.${field}: documented @default ${text} but DEFAULTS has ${JSON.stringify(actual)}`);
  }
}
