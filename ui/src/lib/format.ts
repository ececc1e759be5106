// Times, days and initials the way people read them in a messenger.

const DAY = 86_400_000;

function startOfDay(ts: number): number {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Chat-list time: today 14:05, this week the weekday, older the date. */
export function listTime(ts: number | null, now = Date.now()): string {
  if (ts === null) return "";
  const d = new Date(ts);
  const today = startOfDay(now);
  if (ts >= today) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (ts >= today - 6 * DAY) return d.toLocaleDateString([], { weekday: "short" });
  return d.toLocaleDateString();
}

/** A bubble's time: 14:05. */
export function clockTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Day separator text: Today, Yesterday, or the full date. */
export function dayLabel(ts: number, now = Date.now()): string {
  const day = startOfDay(ts);
  const today = startOfDay(now);
  if (day === today) return "Today";
  if (day === today - DAY) return "Yesterday";
  return new Date(ts).toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

/** Up to two initials of a name. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0] ?? "");
  return (letters.join("") || "?").toUpperCase();
}

/** A stable hue for an id, so a chat keeps its avatar colour. */
export function hue(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 360;
}

/** Splits text into plain and highlighted parts for the words of a query (accents and case ignored). */
export function highlight(text: string, query: string): { text: string; hit: boolean }[] {
  const fold = (s: string) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const words = fold(query).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  if (words.length === 0) return [{ text, hit: false }];
  // Fold character by character so offsets in the folded text map back to the original.
  const map: number[] = [];
  let folded = "";
  Array.from(text).forEach((ch, i) => {
    const f = fold(ch);
    for (let k = 0; k < f.length; k++) map.push(i);
    folded += f;
  });
  const chars = Array.from(text);
  const marks = new Array<boolean>(chars.length).fill(false);
  for (const w of words) {
    let at = folded.indexOf(w);
    while (at !== -1) {
      for (let k = at; k < at + w.length; k++) marks[map[k]] = true;
      at = folded.indexOf(w, at + w.length);
    }
  }
  const parts: { text: string; hit: boolean }[] = [];
  chars.forEach((ch, i) => {
    const last = parts[parts.length - 1];
    if (last && last.hit === marks[i]) last.text += ch;
    else parts.push({ text: ch, hit: marks[i] });
  });
  return parts;
}
