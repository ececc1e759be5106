// Typed wrappers over the app's commands (src-tauri/src/commands.rs). Errors arrive as
// {kind, message}; callers show the message.
import { invoke } from "@tauri-apps/api/core";

export interface Status {
  account: string | null;
  device: string | null;
  linked: boolean;
  mode: string;
  chats: number;
  messages: number;
  sync: { state: string; done: number; total: number; chunks_done: number; chunks_total: number };
}

export interface Chat {
  id: string;
  name: string;
  kind: "direct" | "group";
  messages: number;
  last_ts: number | null;
}

export interface Message {
  id: string;
  chat: string;
  sender: string | null;
  from_me: boolean;
  ts: number;
  kind: string;
  text: string;
}

export interface SearchHit extends Message {
  chat_name: string;
}

export interface UiError {
  kind: string;
  message: string;
}

export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as UiError).message);
  return String(e);
}

export const api = {
  status: () => invoke<Status>("status"),
  chats: () => invoke<Chat[]>("chats"),
  history: (chat: string, before?: string) => invoke<Message[]>("history", { chat, before: before ?? null }),
  search: (query: string, chat?: string) => invoke<SearchHit[]>("search", { query, chat: chat ?? null }),
};
