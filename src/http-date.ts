/**
 * Strict HTTP-date parsing (RFC 9110 §5.6.7). `Date.parse` accepts far more than the three
 * formats HTTP allows (`UTC`, other zones, dashes, missing commas...), and a cache must treat
 * an invalid date in `Expires` as a time in the past (RFC 9111 §5.3), so it cannot be lenient.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// Names are matched case-insensitively: senders get the case wrong, and the meaning is unambiguous.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

function toTime(year: number, month: string, day: number, h: string, m: string, s: string): number | undefined {
  const hours = Number(h);
  const minutes = Number(m);
  const seconds = Number(s);
  if (day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return undefined;
  const time = Date.UTC(year, MONTHS.indexOf(month.toLowerCase()), day, hours, minutes, Math.min(seconds, 59));
  return Number.isFinite(time) ? time : undefined;
}

/**
 * Epoch ms of an HTTP-date in one of the three formats of RFC 9110 §5.6.7, or undefined when the
 * value is not one. A two-digit rfc850 year more than 50 years in the future means the past
 * century (RFC 9110 §5.6.7).
 */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m !== null) return toTime(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = ASCTIME.exec(v);
  if (m !== null) return toTime(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  m = RFC850.exec(v);
  if (m !== null) {
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    return toTime(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  return undefined;
}
