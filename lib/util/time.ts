/** Timestamps in the formats the Kubernetes API writes. */

/** Formats a time the way metav1.Time does: RFC 3339 in UTC with seconds precision (`2026-01-01T12:00:00Z`). */
export function formatTime(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Formats a time the way metav1.MicroTime does: RFC 3339 in UTC with microseconds (`2026-01-01T12:00:00.123000Z`). */
export function formatMicroTime(time: Date): string {
  return time.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
