// Times, days, names, previews, links and search highlights the way people read them in a
// messenger. Pure functions only: no state, no DOM.
import type { LastMessage, MessageView } from "./api";

const DAY = 86_400_000;

function startOfDay(ts: number): number {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

// Formatters are built once: toLocale*String builds a new one on every call, which shows up
// when hundreds of bubbles render while scrolling.
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const SHORT = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric" });
const LONG = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const WEEKDAY = new Intl.DateTimeFormat(undefined, { weekday: "long" });
const DAY_THIS_YEAR = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const DAY_OTHER_YEAR = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" });

/** A bubble's time: 14:05. */
export function clockTime(ts: number): string {
  return CLOCK.format(ts);
}

/** A short date: 3/14/2024 in the reader's locale. */
export function shortDate(ts: number): string {
  return SHORT.format(ts);
}

/** A long date: March 14, 2024. */
export function longDate(ts: number): string {
  return LONG.format(ts);
}

/** Date and time in full, for tooltips: Thursday, March 14, 2024 at 14:05. */
export function fullTime(ts: number): string {
  return FULL.format(ts);
}

/** Chat-list time: today 14:05, this week the weekday, older the date. */
export function listTime(ts: number | null | undefined, now = Date.now()): string {
  if (ts === null || ts === undefined) return "";
  const today = startOfDay(now);
  if (ts >= today) return clockTime(ts);
  if (ts >= today - 6 * DAY) return WEEKDAY.format(ts);
  return shortDate(ts);
}

/** Day separator text: Today, Yesterday, the weekday this week, or the full date. */
export function dayLabel(ts: number, now = Date.now()): string {
  const day = startOfDay(ts);
  const today = startOfDay(now);
  if (day === today) return "Today";
  if (day === today - DAY) return "Yesterday";
  const sameYear = new Date(ts).getFullYear() === new Date(now).getFullYear();
  return (sameYear ? DAY_THIS_YEAR : DAY_OTHER_YEAR).format(ts);
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

/** "last seen today at 14:05", "last seen yesterday at 9:12", "last seen 3/1/2024". */
export function lastSeen(at: number, now = Date.now()): string {
  const day = startOfDay(at);
  const today = startOfDay(now);
  if (day === today) return `last seen today at ${clockTime(at)}`;
  if (day === today - DAY) return `last seen yesterday at ${clockTime(at)}`;
  return `last seen ${shortDate(at)}`;
}

/** 12,400 in the reader's locale. */
export function count(n: number): string {
  return Math.max(0, Math.round(n)).toLocaleString();
}

/** Up to two initials of a name. */
export function initials(name: string): string {
  const words = name
    .trim()
    .split(/\s+/)
    .filter((w) => /\p{L}|\p{N}/u.test(w));
  const letters = words.slice(0, 2).map((w) => Array.from(w.replace(/^[^\p{L}\p{N}]+/u, ""))[0] ?? "");
  return (letters.join("") || "?").toUpperCase();
}

/** A stable hue for an id or a name, so a chat keeps its avatar colour. */
export function hue(id: string): number {
  let h = 2166136261;
  for (const c of id) {
    h ^= c.codePointAt(0) ?? 0;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h % 360;
}

/** Case- and accent-insensitive form of a text, for matching. */
export function fold(s: string): string {
  return s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/** The words of a search query, folded. */
export function queryWords(query: string): string[] {
  return fold(query)
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

/** Whether a name contains every word of a query (accents and case ignored). */
export function nameMatches(name: string, query: string): boolean {
  const words = queryWords(query);
  if (words.length === 0) return false;
  const folded = fold(name);
  return words.every((w) => folded.includes(w));
}

export interface Part {
  text: string;
  hit: boolean;
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * Splits text into plain and highlighted parts for the words of a query: accents and case are
 * ignored, every word must start a word of the text, the last one may be a prefix while the
 * others must be whole words. When nothing matches that strictly, any occurrence is marked.
 * With `around` set, a long text is cut to start shortly before the first hit ("…" first).
 */
export function highlight(text: string, query: string, around = 0): Part[] {
  const words = queryWords(query);
  const chars = Array.from(text);
  if (words.length === 0 || chars.length === 0) return [{ text, hit: false }];
  // Fold character by character so offsets in the folded text map back to the original.
  const map: number[] = [];
  let folded = "";
  chars.forEach((ch, i) => {
    const f = fold(ch);
    for (let k = 0; k < f.length; k++) map.push(i);
    folded += f;
  });
  const marks = new Array<boolean>(chars.length).fill(false);
  const mark = (strict: boolean): boolean => {
    let any = false;
    words.forEach((w, wi) => {
      const prefix = wi === words.length - 1;
      let at = folded.indexOf(w);
      while (at !== -1) {
        const end = at + w.length;
        const startsWord = at === 0 || !WORD_CHAR.test(folded.charAt(at - 1));
        const endsWord = end >= folded.length || !WORD_CHAR.test(folded.charAt(end));
        if (!strict || (startsWord && (prefix || endsWord))) {
          for (let k = at; k < end; k++) {
            const i = map[k];
            if (i !== undefined) marks[i] = true;
          }
          any = true;
        }
        at = folded.indexOf(w, at + 1);
      }
    });
    return any;
  };
  if (!mark(true)) mark(false);
  // A combining mark (folded to nothing) goes with the letter before it, so a highlight never
  // splits "e" from its accent in decomposed text.
  chars.forEach((ch, i) => {
    if (i > 0 && fold(ch) === "") marks[i] = marks[i - 1] ?? false;
  });

  let from = 0;
  if (around > 0) {
    const first = marks.indexOf(true);
    if (first > around) {
      from = first - Math.floor(around / 2);
      // Start at a word boundary when one is near.
      const space = chars.slice(from, first).findIndex((c) => /\s/u.test(c));
      if (space !== -1) from += space + 1;
    }
  }
  const parts: Part[] = from > 0 ? [{ text: "…", hit: false }] : [];
  for (let i = from; i < chars.length; i++) {
    const hit = marks[i] ?? false;
    const ch = chars[i] ?? "";
    const last = parts[parts.length - 1];
    if (last && last.hit === hit) last.text += ch;
    else parts.push({ text: ch, hit });
  }
  return parts;
}

export interface TextPart {
  text: string;
  href: string | null;
}

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"']+/giu;

/** Splits text into plain parts and links (http, https, and www. addresses). */
export function linkify(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    // Trailing punctuation belongs to the sentence, not the address.
    while (/[.,;:!?)\]}]$/u.test(url)) {
      if (url.endsWith(")") && (url.match(/\(/gu)?.length ?? 0) >= (url.match(/\)/gu)?.length ?? 0)) break;
      url = url.slice(0, -1);
    }
    const at = m.index ?? 0;
    if (at > last) parts.push({ text: text.slice(last, at), href: null });
    const href = /^www\./iu.test(url) ? `https://${url}` : url;
    parts.push({ text: url, href });
    last = at + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last), href: null });
  return parts;
}

export type FileKind = "image" | "video" | "audio" | "file";

/** What a media message holds, from its file name or placeholder text. */
export function fileKind(name: string): FileKind {
  const n = name.toLowerCase();
  if (/\.(jpe?g|png|gif|webp|heic|bmp|svg)\b/u.test(n) || /\b(image|photo|sticker)\b/u.test(n)) return "image";
  if (/\.(mp4|mov|mkv|webm|3gp|avi)\b/u.test(n) || /\b(video|gif)\b/u.test(n)) return "video";
  if (/\.(opus|ogg|mp3|m4a|aac|wav|amr)\b/u.test(n) || /\b(audio|voice)\b/u.test(n)) return "audio";
  return "file";
}

/** A file name or placeholder for a media message ("Photo" when the text says nothing). */
export function mediaLabel(text: string): string {
  const t = text.trim();
  if (!t || /^<?media omitted>?$/iu.test(t)) return "Media";
  return t;
}

/** The first line of a text, trimmed, for one-line previews. */
export function firstLine(text: string): string {
  const line = text.split(/\r?\n/u).find((l) => l.trim()) ?? "";
  return line.trim();
}

export interface Preview {
  /** "You: " or "Alice: ", or empty. */
  prefix: string;
  text: string;
  /** Rendered in italics: deleted, unsupported, system. */
  quiet: boolean;
  media: FileKind | null;
}

/** The chat list's preview of the last message. */
export function preview(last: LastMessage | null, group: boolean): Preview {
  if (!last) return { prefix: "", text: "No messages yet", quiet: true, media: null };
  const prefix = last.from_me ? "You: " : group && last.sender ? `${last.sender}: ` : "";
  switch (last.kind) {
    case "deleted":
      return { prefix: "", text: last.from_me ? "You deleted this message" : "This message was deleted", quiet: true, media: null };
    case "system":
      return { prefix: "", text: firstLine(last.text), quiet: true, media: null };
    case "media": {
      const label = mediaLabel(last.text);
      return { prefix, text: firstLine(label), quiet: false, media: fileKind(label) };
    }
    case "unsupported":
      return { prefix, text: "Unsupported message", quiet: true, media: null };
    default:
      return { prefix, text: firstLine(last.text), quiet: false, media: null };
  }
}

/** A one-line description of a message, for quotes and the reply bar. */
export function quoteText(m: MessageView): string {
  if (m.deleted || m.kind === "deleted") return "This message was deleted";
  if (m.kind === "media") return mediaLabel(m.text);
  if (m.kind === "unsupported") return "Unsupported message";
  return firstLine(m.text) || " ";
}

/** Who wrote a message, for quotes: "You" for own. */
export function authorName(m: MessageView, fallback: string): string {
  if (m.from_me) return "You";
  return m.sender ?? fallback;
}

/** "Multi-device", "Bridge", ... for a mode. */
export function modeLabel(mode: string): string {
  switch (mode) {
    case "multi":
      return "Linked on its own";
    case "bridge":
      return "Linked through your phone";
    case "primary":
      return "Primary device";
    default:
      return "Not linked";
  }
}
