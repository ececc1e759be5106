// The app's shared state: what the shell told us at start (snapshot) and since (events), the
// chat list, the linking flow, who is typing or online, and which chat is open. Components read
// it directly; the open conversation also listens to message events through `onMessages`.
import { api, errorMessage, type About, type AppEvent, type ChatView, type CodeEvent, type Connection, type DeviceView, type LinkMode, type MessageStatus, type MessageView, type Settings, type Status } from "./api";
import { fold } from "./format";

export type Screen = "boot" | "link" | "main";
export type LinkPhase = "starting" | "code" | "expired" | "refused" | "failed";

export interface LinkState {
  phase: LinkPhase;
  code: CodeEvent | null;
  /** Why linking stopped (refused or failed), in one sentence. */
  message: string | null;
  /** The device name linking runs with. */
  name: string;
  /** The mode linking runs in. */
  mode: LinkMode;
}

export interface SyncState {
  active: boolean;
  done: number;
  total: number;
}

export interface Presence {
  online: boolean;
  at: number;
}

export interface GroupInfo {
  names: string[] | null;
  count: number | null;
}

/** Events the open conversation cares about. */
export type MessageEvent =
  | { event: "message"; message: MessageView }
  | { event: "update"; message: MessageView }
  | { event: "receipt"; id: string; chat: string; status: MessageStatus };

export interface OpenChat {
  id: string;
  /** A message to scroll to and flash (search hit). */
  focus: string | null;
  /** Changes on every request, so asking for the same message twice still jumps. */
  nonce: number;
  /** The chat's name when the chat list does not know it yet. */
  name: string | null;
}

const CHATS_EVERY_MS = 500;
const TYPING_TIMEOUT_MS = 6_000;

function groupInfo(members: unknown): GroupInfo {
  if (typeof members === "number") return { names: null, count: members };
  if (Array.isArray(members)) {
    const names = members
      .map((m) => (typeof m === "string" ? m : m && typeof m === "object" && "name" in m ? String((m as { name: unknown }).name) : null))
      .filter((n): n is string => n !== null && n !== "");
    return { names: names.length ? names : null, count: members.length };
  }
  return { names: null, count: null };
}

class AppStore {
  screen = $state<Screen>("boot");
  bootError = $state<string | null>(null);
  status = $state<Status | null>(null);
  about = $state<About | null>(null);
  settings = $state<Settings>({ theme: "system", notifications: true, preview: true });
  connection = $state<Connection>("connecting");
  connectionReason = $state<string | null>(null);
  /** The phone removed this device (event `unlinked`, or connection state "unlinked"). */
  unlinked = $state(false);
  hostName = $state("");

  chats = $state.raw<ChatView[]>([]);
  chatsLoaded = $state(false);
  chatsError = $state<string | null>(null);

  sync = $state<SyncState>({ active: false, done: 0, total: 0 });
  link = $state<LinkState>({ phase: "starting", code: null, message: null, name: "", mode: "multi-device" });
  /** Whether the link screen was opened from the main view (so it can go back). */
  linkFromMain = $state(false);

  typing = $state.raw<Record<string, string[]>>({});
  presence = $state.raw<Record<string, Presence>>({});
  groups = $state.raw<Record<string, GroupInfo>>({});
  devices = $state.raw<DeviceView[] | null>(null);
  devicesError = $state<string | null>(null);
  exportProgress = $state<{ done: number; total: number } | null>(null);

  open = $state<OpenChat | null>(null);
  settingsOpen = $state(false);

  /** Whether this computer is linked through the phone (bridge mode): "offline" then means
   * the phone is not reachable. */
  get throughPhone(): boolean {
    return (this.status?.mode ?? this.about?.mode) === "bridge";
  }

  #listeners = new Set<(e: MessageEvent) => void>();
  #chatsTimer: ReturnType<typeof setTimeout> | null = null;
  #chatsLast = 0;
  #chatsBusy = false;
  #chatsAgain = false;
  #typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #readyReported = false;
  #nonce = 0;

  /** Subscribes to the shell's events and takes its snapshot; decides the first screen. */
  async boot(): Promise<void> {
    this.bootError = null;
    try {
      const snap = await api.subscribe((e) => this.#onEvent(e));
      this.status = snap.status;
      this.about = snap.about;
      this.settings = snap.settings;
      this.hostName = snap.host_name;
      this.sync = {
        active: snap.status.sync.state === "running",
        done: snap.status.sync.done,
        total: snap.status.sync.total,
      };
      // A device that was unlinked but still holds its history opens on that history, with the
      // red banner leading back to linking.
      const usable = snap.status.linked || snap.status.mode === "primary" || snap.status.chats > 0;
      if (usable) {
        this.screen = "main";
        this.#setConnection(snap.connection, null);
        if (!snap.status.linked && snap.status.mode !== "primary") this.unlinked = true;
        void this.loadChats();
      } else {
        this.#setConnection(snap.connection, null);
        this.startLinking(false);
      }
    } catch (e) {
      this.bootError = errorMessage(e);
    }
  }

  // ---- chat list -------------------------------------------------------------------------

  /** Re-reads the chat list now (coalescing calls that arrive while one runs). */
  async loadChats(): Promise<void> {
    if (this.#chatsBusy) {
      this.#chatsAgain = true;
      return;
    }
    this.#chatsBusy = true;
    this.#chatsLast = Date.now();
    try {
      this.chats = await api.chats();
      this.chatsError = null;
      if (this.status && this.status.chats !== this.chats.length) this.status = { ...this.status, chats: this.chats.length };
    } catch (e) {
      this.chatsError = errorMessage(e);
    } finally {
      this.chatsLoaded = true;
      this.#chatsBusy = false;
      if (this.#chatsAgain) {
        this.#chatsAgain = false;
        this.requestChats();
      }
    }
  }

  /** Re-reads the account's devices (the settings panel shows them). */
  async loadDevices(): Promise<void> {
    this.devicesError = null;
    try {
      this.devices = await api.devices();
    } catch (e) {
      this.devicesError = errorMessage(e);
    }
  }

  /** Re-reads the counts shown in the welcome panel and the settings. */
  async loadStatus(): Promise<void> {
    try {
      this.status = await api.status();
    } catch {
      // Only counts: the previous ones stay on screen until the next read.
    }
  }

  /** Re-reads the chat list soon, at most every 500 ms. */
  requestChats(): void {
    if (this.#chatsTimer !== null || this.screen !== "main") return;
    const wait = Math.max(0, this.#chatsLast + CHATS_EVERY_MS - Date.now());
    this.#chatsTimer = setTimeout(() => {
      this.#chatsTimer = null;
      void this.loadChats();
    }, wait);
  }

  /** Replaces one chat's row (after `set_chat`), keeping the shell's order until the next read. */
  patchChat(chat: ChatView): void {
    this.chats = this.chats.map((c) => (c.id === chat.id ? chat : c));
    this.requestChats();
  }

  /** Marks a chat read locally, ahead of the shell's `chats_changed`. */
  clearUnread(id: string): void {
    if (this.chats.some((c) => c.id === id && c.unread > 0)) {
      this.chats = this.chats.map((c) => (c.id === id ? { ...c, unread: 0 } : c));
    }
  }

  chat(id: string | null | undefined): ChatView | null {
    if (!id) return null;
    return this.chats.find((c) => c.id === id) ?? null;
  }

  /** Tells the shell the chat list is on screen, once per app start. */
  reportReady(): void {
    if (this.#readyReported) return;
    this.#readyReported = true;
    api.uiReady("chat_list").catch(() => {
      // The benchmark hook is best effort: the user needs nothing from it.
    });
  }

  openChat(id: string, focus: string | null = null, name: string | null = null): void {
    this.open = { id, focus, nonce: ++this.#nonce, name };
  }

  closeChat(): void {
    this.open = null;
  }

  /** Opens the chat above/below the open one in the list (Ctrl+Up/Down). */
  step(delta: number): void {
    if (this.chats.length === 0) return;
    const i = this.open ? this.chats.findIndex((c) => c.id === this.open?.id) : -1;
    const next = i === -1 ? (delta > 0 ? 0 : this.chats.length - 1) : Math.min(Math.max(i + delta, 0), this.chats.length - 1);
    const chat = this.chats[next];
    if (chat && chat.id !== this.open?.id) this.openChat(chat.id);
  }

  // ---- conversation events ---------------------------------------------------------------

  /** Listens to message/update/receipt events; returns the way to stop. */
  onMessages(fn: (e: MessageEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  typingIn(chat: string): string[] {
    return this.typing[chat] ?? [];
  }

  presenceOf(name: string): Presence | null {
    return this.presence[fold(name)] ?? null;
  }

  // ---- linking ---------------------------------------------------------------------------

  /** Shows the link screen and starts linking with the current device name. */
  startLinking(fromMain: boolean): void {
    this.linkFromMain = fromMain;
    this.settingsOpen = false;
    this.screen = "link";
    const name = this.link.name || this.hostName || this.about?.device_name || "This computer";
    void this.restartLinking(name);
  }

  /** (Re)starts linking under a name, in a mode (the current one when not given): a fresh
   * code follows as a `code` event. */
  async restartLinking(name: string, mode: LinkMode = this.link.mode): Promise<void> {
    this.link = { phase: "starting", code: null, message: null, name, mode };
    try {
      await api.linkStart(name, mode);
    } catch (e) {
      this.link = { ...this.link, phase: "failed", message: errorMessage(e) };
    }
  }

  /** Leaves the link screen for the local history (only when it was opened from there). */
  async cancelLinking(): Promise<void> {
    try {
      await api.linkCancel();
    } catch {
      // Nothing to undo: the main view shows the connection state either way.
    }
    this.screen = "main";
    void this.loadChats();
  }

  /** After `logout`: the local data is gone, back to the link screen. */
  afterLogout(): void {
    this.chats = [];
    this.chatsLoaded = false;
    this.open = null;
    this.devices = null;
    this.unlinked = false;
    this.sync = { active: false, done: 0, total: 0 };
    this.startLinking(false);
  }

  // ---- settings --------------------------------------------------------------------------

  async saveSettings(next: Settings): Promise<void> {
    const before = this.settings;
    this.settings = next;
    try {
      this.settings = await api.setSettings(next);
    } catch (e) {
      this.settings = before;
      throw e;
    }
  }

  // ---- events ----------------------------------------------------------------------------

  #setConnection(state: Connection, reason: string | null): void {
    this.connection = state;
    this.connectionReason = reason;
    if (state === "unlinked" && this.screen === "main") this.unlinked = true;
    if (state === "online" || state === "connecting") this.unlinked = false;
  }

  #emit(e: MessageEvent): void {
    for (const fn of this.#listeners) fn(e);
  }

  #setTyping(chat: string, from: string, on: boolean): void {
    const key = `${chat}\u0000${from}`;
    const timer = this.#typingTimers.get(key);
    if (timer !== undefined) clearTimeout(timer);
    this.#typingTimers.delete(key);
    const now = (this.typing[chat] ?? []).filter((n) => n !== from);
    if (on) {
      now.push(from);
      this.#typingTimers.set(
        key,
        setTimeout(() => this.#setTyping(chat, from, false), TYPING_TIMEOUT_MS),
      );
    }
    const next = { ...this.typing };
    if (now.length) next[chat] = now;
    else delete next[chat];
    this.typing = next;
  }

  #onEvent(e: AppEvent): void {
    switch (e.event) {
      case "code":
        this.link = { ...this.link, phase: "code", code: e, message: null };
        break;
      case "refused":
        this.link = { ...this.link, phase: "refused", message: e.reason };
        break;
      case "link_failed":
        this.link = { ...this.link, phase: e.kind === "expired" ? "expired" : "failed", message: e.message };
        break;
      case "linked":
        // Only the end of our own linking: other devices' links are not this screen's business.
        if (this.screen !== "link") break;
        this.unlinked = false;
        // The session starts now; the shell's next `connection` event says how it goes.
        this.connection = "connecting";
        this.connectionReason = null;
        this.link = { ...this.link, phase: "starting", code: null, message: null };
        this.sync = { active: true, done: 0, total: 0 };
        if (this.status) this.status = { ...this.status, linked: true, account: e.account, device: e.device, mode: this.link.mode === "bridge" ? "bridge" : "multi" };
        this.screen = "main";
        this.chatsLoaded = false;
        void this.loadChats();
        void api.about().then(
          (a) => (this.about = a),
          () => {
            // The settings panel re-reads it when opened.
          },
        );
        break;
      case "progress":
        this.sync = { active: true, done: e.messages_done, total: e.messages_total };
        this.requestChats();
        break;
      case "synced":
        this.sync = { active: false, done: e.messages, total: e.messages };
        void this.loadChats();
        void this.loadStatus();
        break;
      case "connection":
        this.#setConnection(e.state, e.reason ?? null);
        break;
      case "unlinked":
        this.unlinked = true;
        this.connection = "unlinked";
        break;
      case "message":
        if (!e.message.from_me) this.#setTyping(e.message.chat, e.message.sender ?? "", false);
        this.#emit(e);
        this.requestChats();
        break;
      case "update":
        this.#emit(e);
        this.requestChats();
        break;
      case "receipt":
        this.#emit(e);
        break;
      case "typing":
        this.#setTyping(e.chat, e.from, e.on);
        break;
      case "presence":
        this.presence = { ...this.presence, [fold(e.name)]: { online: e.online, at: e.at } };
        break;
      case "devices":
        if (Array.isArray(e.devices)) this.devices = e.devices;
        else if (this.devices !== null) void this.loadDevices();
        break;
      case "group":
        this.groups = { ...this.groups, [e.chat]: groupInfo(e.members) };
        this.requestChats();
        break;
      case "contact":
      case "chats_changed":
        this.requestChats();
        break;
      case "export_progress":
        this.exportProgress = { done: e.done, total: e.total };
        break;
      case "settings":
        this.settings = e.settings;
        break;
    }
  }
}

export const app = new AppStore();
