// The contract with the Rust shell (src-tauri/src/commands.rs): the types it sends, a typed
// wrapper for every command, and the union of events it pushes through the `subscribe` channel.
// Errors reject with {kind, message}; `errorMessage` turns anything thrown into one sentence.
import { Channel, invoke } from "@tauri-apps/api/core";

export type Mode = "primary" | "multi" | "bridge" | "unlinked";

/** How the link screen links this computer: a device of its own, or through the phone. */
export type LinkMode = "multi-device" | "bridge";

export interface SyncView {
  state: "none" | "running" | "complete";
  done: number;
  total: number;
  chunks_done: number;
  chunks_total: number;
}

export interface Status {
  account: string | null;
  device: string | null;
  linked: boolean;
  mode: Mode;
  /** Bridge mode: the phone's bridge address this computer dials. */
  bridge_url?: string;
  /** Bridge mode, from a live status: whether the phone is reachable now. */
  phone_reachable?: boolean;
  chats: number;
  messages: number;
  sync: SyncView;
}

export interface LastMessage {
  sender: string | null;
  from_me: boolean;
  kind: string;
  text: string;
  ts: number;
}

export interface ChatView {
  id: string;
  name: string;
  kind: "direct" | "group";
  messages: number;
  last_ts: number | null;
  unread: number;
  muted: boolean;
  pinned: boolean;
  last: LastMessage | null;
}

export interface ReactionView {
  emoji: string;
  from: string;
  from_me: boolean;
}

export type MessageKind = "text" | "system" | "media" | "deleted" | "unsupported";
export type MessageStatus = "pending" | "sent" | "delivered" | "read";

export interface MessageView {
  id: string;
  chat: string;
  sender: string | null;
  from_me: boolean;
  ts: number;
  kind: MessageKind;
  text: string;
  status: MessageStatus | null;
  reply_to: string | null;
  reactions: ReactionView[];
  edited: boolean;
  deleted: boolean;
}

export interface SearchHitView extends MessageView {
  chat_name: string;
}

export interface DeviceView {
  id: string;
  name: string;
  platform: string;
  linked_at: number;
  primary: boolean;
}

/** This device, for the settings screen and the header. */
export interface About {
  account_name: string | null;
  device: string | null;
  device_name: string | null;
  mode: Mode;
  broker: string | null;
  linked_at: number | null;
  home: string;
}

export type Theme = "system" | "light" | "dark";

export interface Settings {
  theme: Theme;
  notifications: boolean;
  preview: boolean;
}

export type Connection = "unlinked" | "connecting" | "online" | "offline";

export interface Snapshot {
  status: Status;
  about: About;
  settings: Settings;
  connection: Connection;
  host_name: string;
}

export type ExportFormat = "json" | "html";

/** Everything the shell pushes, tagged by `event`. */
export type AppEvent =
  | { event: "code"; link: string; svg: string; index: number; expires_at: number; issued_at: number }
  | { event: "refused"; reason: string }
  | { event: "linked"; account: string; device: string }
  | { event: "link_failed"; kind: string; message: string }
  | { event: "progress"; chunks_done: number; chunks_total: number; messages_done: number; messages_total: number }
  | { event: "synced"; chunks: number; messages: number }
  | { event: "connection"; state: Connection; reason?: string | null }
  | { event: "message"; message: MessageView }
  | { event: "update"; message: MessageView }
  | { event: "receipt"; id: string; chat: string; status: MessageStatus }
  | { event: "typing"; chat: string; from: string; account: string; on: boolean }
  | { event: "presence"; device: string; name: string; online: boolean; at: number }
  /** The account's device list changed; `devices` is the list or how many there are now. */
  | { event: "devices"; account: string; version: number; devices: DeviceView[] | number }
  /** `members` are names; `member` says whether this account is still in the group. */
  | { event: "group"; chat: string; name: string; members: unknown; member: boolean }
  | { event: "contact"; account: string; name: string }
  | { event: "chats_changed" }
  | { event: "unlinked" }
  | { event: "export_progress"; done: number; total: number }
  | { event: "settings"; settings: Settings };

export type CodeEvent = Extract<AppEvent, { event: "code" }>;

/** How a command failed, as the shell reports it. */
export interface UiError {
  kind: string;
  message: string;
}

/** One plain sentence for whatever a command rejected with. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) {
    const message = String((e as UiError).message).trim();
    if (message) return message;
  }
  if (typeof e === "string" && e.trim()) return e.trim();
  return "Something went wrong. Please try again.";
}

/** The kind of whatever a command rejected with (`""` when it carries none). */
export function errorKind(e: unknown): string {
  return e && typeof e === "object" && "kind" in e ? String((e as UiError).kind) : "";
}

/** Page size of `history`: a shorter page means the end of the chat was reached. */
export const PAGE = 50;

/** Keeps only the arguments that are set, so optional ones reach Rust as `None`. */
function args(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

export const api = {
  subscribe: (onEvent: (e: AppEvent) => void) => invoke<Snapshot>("subscribe", { events: new Channel<AppEvent>(onEvent) }),
  status: () => invoke<Status>("status"),
  about: () => invoke<About>("about"),
  chats: () => invoke<ChatView[]>("chats"),
  history: (chat: string, cursor: { before?: string; after?: string; around?: string } = {}) =>
    invoke<MessageView[]>("history", args({ chat, ...cursor })),
  search: (query: string, chat?: string) => invoke<SearchHitView[]>("search", args({ query, chat })),
  send: (chat: string, text: string, reply?: string | null) => invoke<MessageView>("send", args({ chat, text, reply })),
  react: (message: string, emoji: string) => invoke<MessageView>("react", { message, emoji }),
  edit: (message: string, text: string) => invoke<MessageView>("edit", { message, text }),
  remove: (message: string) => invoke<MessageView>("remove", { message }),
  markRead: (chat: string) => invoke<null>("mark_read", { chat }),
  typing: (chat: string, on: boolean) => invoke<null>("typing", { chat, on }),
  setChat: (chat: string, change: { pinned?: boolean; muted?: boolean }) => invoke<ChatView>("set_chat", args({ chat, ...change })),
  devices: () => invoke<DeviceView[]>("devices"),
  settings: () => invoke<Settings>("settings"),
  setSettings: (settings: Settings) => invoke<Settings>("set_settings", { settings }),
  linkStart: (name: string, mode: LinkMode = "multi-device") => invoke<null>("link_start", { name, mode }),
  linkCancel: () => invoke<null>("link_cancel"),
  saveQr: () => invoke<string>("save_qr"),
  exportHistory: (format: ExportFormat, chat?: string | null) => invoke<string>("export", args({ format, chat })),
  logout: () => invoke<null>("logout"),
  uiReady: (what: string) => invoke<null>("ui_ready", { what }),
};
