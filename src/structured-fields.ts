/**
 * A Structured Field Dictionary parser (RFC 8941 §4.2.2), enough for the targeted cache-control
 * fields of RFC 9213 (`CDN-Cache-Control`), which are Dictionaries: a value that does not parse
 * makes the whole field invalid. Inner lists are not supported (no cache directive uses them);
 * a field containing one is treated as invalid.
 */

/** One bare item (RFC 8941 §3.3) with its type. */
export type BareItem =
  | { type: 'integer' | 'decimal'; value: number }
  | { type: 'string' | 'token' | 'bytes'; value: string }
  | { type: 'boolean'; value: boolean };

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(): never {
    throw new SyntaxError(`invalid structured field at ${this.i}`);
  }

  skipSp(): void {
    while (this.s[this.i] === ' ') this.i++;
  }

  skipOws(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  key(): string {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(this.s.slice(this.i));
    if (m === null) this.fail();
    this.i += m[0].length;
    return m[0];
  }

  bareItem(): BareItem {
    const rest = this.s.slice(this.i);
    const c = rest[0];
    if (c === '"') {
      let out = '';
      for (let j = 1; j < rest.length; j++) {
        const ch = rest[j]!;
        if (ch === '\\') {
          const next = rest[++j];
          if (next !== '"' && next !== '\\') this.fail();
          out += next;
        } else if (ch === '"') {
          this.i += j + 1;
          return { type: 'string', value: out };
        } else if (ch < ' ' || ch > '~') this.fail();
        else out += ch;
      }
      this.fail();
    }
    if (c === ':') {
      const m = /^:([A-Za-z0-9+/=]*):/.exec(rest);
      if (m === null) this.fail();
      this.i += m[0].length;
      return { type: 'bytes', value: m[1]! };
    }
    if (c === '?') {
      if (rest[1] !== '0' && rest[1] !== '1') this.fail();
      this.i += 2;
      return { type: 'boolean', value: rest[1] === '1' };
    }
    let m = /^-?\d{1,15}(?![.\d])/.exec(rest);
    if (m !== null) {
      this.i += m[0].length;
      return { type: 'integer', value: Number(m[0]) };
    }
    m = /^-?\d{1,12}\.\d{1,3}(?!\d)/.exec(rest);
    if (m !== null) {
      this.i += m[0].length;
      return { type: 'decimal', value: Number(m[0]) };
    }
    m = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(rest);
    if (m !== null) {
      this.i += m[0].length;
      return { type: 'token', value: m[0] };
    }
    this.fail();
  }

  parameters(): void {
    while (this.s[this.i] === ';') {
      this.i++;
      this.skipSp();
      this.key();
      if (this.s[this.i] === '=') {
        this.i++;
        this.bareItem();
      }
    }
  }
}

/**
 * Parses a Dictionary field value (lines already joined with `,`). Parameters are validated and
 * dropped. Returns undefined when the value is not a valid Dictionary.
 */
export function parseDictionary(value: string): Map<string, BareItem> | undefined {
  const p = new Parser(value);
  const out = new Map<string, BareItem>();
  try {
    p.skipSp();
    if (p.i === value.length) return out;
    for (;;) {
      const key = p.key();
      let item: BareItem = { type: 'boolean', value: true };
      if (value[p.i] === '=') {
        p.i++;
        item = p.bareItem();
      }
      p.parameters();
      out.set(key, item);
      p.skipOws();
      if (p.i === value.length) break;
      if (value[p.i] !== ',') p.fail();
      p.i++;
      p.skipOws();
      if (p.i === value.length) p.fail();
    }
  } catch {
    return undefined;
  }
  return out;
}
