// Exact money and duration arithmetic, the server's rules (chalicelib/domain/money.py):
// duration_seconds = round_half_up(hours × 3600); price = ceil(lamports_per_hour × seconds / 3600).
// BigInt throughout: no float ever touches an amount.

export const LAMPORTS_PER_SOL = 1_000_000_000n;

/** Seconds of a decimal hours string ("0.5", "2", ".25"), or null when it is not a plain
 * non-negative decimal number. */
export function durationSeconds(hoursText) {
  const m = /^\s*(\d*)(?:\.(\d*))?\s*$/.exec(String(hoursText));
  if (!m || (m[1] === "" && (m[2] === undefined || m[2] === ""))) return null;
  const frac = m[2] || "";
  const digits = BigInt((m[1] || "0") + frac);
  const scale = 10n ** BigInt(frac.length);
  const product = digits * 3600n;
  let q = product / scale;
  if ((product % scale) * 2n >= scale) q += 1n;
  return q;
}

/** ceil(lamportsPerHour × seconds / 3600), BigInt. */
export function priceLamports(lamportsPerHour, seconds) {
  const n = BigInt(lamportsPerHour) * BigInt(seconds);
  return (n + 3599n) / 3600n;
}

/** "0.0005" for 500000n lamports: exact, trailing zeros dropped. */
export function sol(lamports) {
  const l = BigInt(lamports);
  const whole = l / LAMPORTS_PER_SOL;
  const frac = (l % LAMPORTS_PER_SOL).toString().padStart(9, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** 1234567n -> "1,234,567". */
export function group(n) {
  return BigInt(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "1 h 02 min 05 s" for a number of seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds)));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h} h ${String(m).padStart(2, "0")} min ${String(r).padStart(2, "0")} s`;
}
