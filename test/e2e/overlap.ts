/** Most spans overlapping at any instant (ends before starts at the same instant: a freed slot can be reused at once). */
export function peakConcurrency(spans: readonly { start: number; end: number }[]): number {
  const events = spans.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let current = 0;
  let peak = 0;
  for (const [, delta] of events) {
    current += delta!;
    peak = Math.max(peak, current);
  }
  return peak;
}
