// Formatting of times, sizes, names and message text for display.

import { h } from "./dom.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const shortDateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const longDateFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  day: "numeric",
  month: "long",
  year: "numeric",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function toDate(value) {
  if (value == null || value === "") return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** Calendar days from `date` to today: 0 today, 1 yesterday. */
function daysAgo(date) {
  return Math.round((startOfDay(new Date()) - startOfDay(date)) / 86_400_000);
}

export function dayKey(value) {
  const date = toDate(value);
  return date ? startOfDay(date) : 0;
}

export function formatTime(value) {
  const date = toDate(value);
  return date ? timeFormat.format(date) : "";
}

export function formatFull(value) {
  const date = toDate(value);
  return date ? fullFormat.format(date) : "";
}

/** Conversation list stamp: time today, weekday this week, else a short date. */
export function formatListStamp(value) {
  const date = toDate(value);
  if (!date) return "";
  const days = daysAgo(date);
  if (days <= 0) return timeFormat.format(date);
  if (days === 1) return "Yesterday";
  if (days < 7) return weekdayFormat.format(date);
  return shortDateFormat.format(date);
}

export function formatDay(value) {
  const date = toDate(value);
  if (!date) return "";
  const days = daysAgo(date);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return longDateFormat.format(date);
}

export function formatLastSeen(value) {
  const date = toDate(value);
  if (!date) return "offline";
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (seconds > -60) return "last seen just now";
  if (seconds > -3600) return `last seen ${relative.format(Math.round(seconds / 60), "minute")}`;
  if (seconds > -86_400) return `last seen ${relative.format(Math.round(seconds / 3600), "hour")}`;
  return `last seen ${shortDateFormat.format(date)}`;
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function initials(name) {
  const words = String(name || "?").trim().split(/[\s._-]+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] ?? "?").slice(0, 2);
  return letters.toUpperCase();
}

const HUES = [2, 18, 30, 145, 165, 182, 198, 212, 228, 248, 265, 282, 300, 322, 340];

/**
 * A stable, readable colour per id, for avatars and sender names. Ids made in
 * a row differ only in their last characters, so the hash mixes every bit.
 */
export function hueOf(id) {
  let hash = 2166136261;
  for (const char of String(id)) {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 16777619);
  }
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x2c1b3c6d);
  hash ^= hash >>> 12;
  hash = Math.imul(hash, 0x297a2d39);
  hash ^= hash >>> 15;
  return HUES[(hash >>> 0) % HUES.length];
}

// Message text is anyone's input, so this must stay linear: a try fails
// within its first eight characters, and a match ends with its one
// quantifier, which nothing after it can make give back characters.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING_PUNCTUATION = new Set([".", ",", ";", ":", "!", "?", ")", "]"]);

/**
 * Sentence punctuation right after an address is not part of it. Trimmed by
 * a loop, not a regex: `/[.,]+$/` retries from every character of a long run
 * of dots that does not end the text, which takes quadratic time.
 */
function withoutTrailingPunctuation(url) {
  let end = url.length;
  while (end > 0 && TRAILING_PUNCTUATION.has(url[end - 1])) end -= 1;
  return url.slice(0, end);
}

/** Message text as text nodes, with http(s) addresses made into links. */
export function richText(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = withoutTrailingPunctuation(match[0]);
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
    last = match.index + url.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
