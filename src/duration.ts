// Durations as operators type them: "90s", "15m", "24h", "30d". One whole number and one unit,
// so there is nothing to misread ("1.5h" or "1h30m" are refused: write "90m").
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)([smhd])$/;

/** "24h" → 86_400_000. Zero ("0s") is allowed; throws a RangeError for anything else it cannot read exactly. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new RangeError(`not a duration: "${text}" (expected a whole number and a unit s, m, h or d, e.g. 30d)`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!Number.isSafeInteger(ms)) throw new RangeError(`duration "${text}" is too long`);
  return ms;
}
