// The serial console's glue, without the terminal: a one-time ticket (POST), a WebSocket to
// the URL it names (binary frames both ways), and the states the page shows. The ticket is
// used at once and never kept: only its sha256, which the log holds too, is remembered, to
// tell this session's ConsoleSessionOpened from a newer one's (a takeover).
import type { ConsoleTicket, InstanceEvent } from "./api";

export type ConsoleState =
  | { kind: "connecting" }
  | { kind: "open" }
  | { kind: "closed" }
  | { kind: "taken-over" }
  | { kind: "failed" }
  | { kind: "refused"; error: unknown };

/** The part of xterm's Terminal the session uses (a fake one in tests). */
export interface Screen {
  write(data: Uint8Array | string): void;
  onData(listener: (data: string) => void): { dispose(): void };
  onBinary(listener: (data: string) => void): { dispose(): void };
}

/** The part of a browser's WebSocket the session uses (a fake one in tests). */
export interface ConsoleSocket {
  binaryType: BinaryType;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
}

export interface Tickets {
  requestConsole(id: string): Promise<ConsoleTicket>;
}

const OPEN = 1;
const encoder = new TextEncoder();

export async function sha256Hex(text: string): Promise<string | null> {
  const subtle = globalThis.crypto?.subtle; // absent outside a secure context
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest("SHA-256", encoder.encode(text)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes as xterm's onBinary hands them over: one character per byte. */
export function binaryString(data: string): Uint8Array {
  return Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
}

export class ConsoleSession {
  private socket: ConsoleSocket | null = null;
  private release: (() => void) | null = null; // the screen's listeners of the socket
  private attempt = 0;
  private mine: string | null = null; // this session's ticket hash, when it can be computed
  private sessionsSeen = 0;
  private newerSession = false;
  state: ConsoleState = { kind: "closed" };

  constructor(
    private readonly tickets: Tickets,
    private readonly instanceId: string,
    private readonly screen: Screen,
    private readonly onState: (state: ConsoleState) => void,
    private readonly connect: (url: string) => ConsoleSocket = (url) => new WebSocket(url),
  ) {}

  /** Asks for a ticket and opens the console (closing this page's earlier session). */
  async open(): Promise<void> {
    this.disconnect();
    const attempt = ++this.attempt;
    this.mine = null;
    this.sessionsSeen = 0;
    this.newerSession = false;
    this.set({ kind: "connecting" });
    let url: string;
    try {
      url = (await this.tickets.requestConsole(this.instanceId)).url;
      const ticket = new URL(url, location.href).searchParams.get("ticket") ?? "";
      this.mine = await sha256Hex(ticket);
    } catch (error) {
      if (attempt === this.attempt) this.set({ kind: "refused", error });
      return;
    }
    if (attempt !== this.attempt) return; // a newer click or a disconnect came first
    this.attach(this.connect(url));
  }

  /** Closes this page's session, if any (leaving the page, or the Disconnect button). */
  disconnect(): void {
    this.attempt++;
    const socket = this.socket;
    this.socket = null;
    this.release?.();
    this.release = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "closed in the page");
      this.set({ kind: "closed" });
    }
  }

  /** Every entry of the instance's timeline as it arrives: a ConsoleSessionOpened that is
   * not this session's means a newer one took the console over. */
  noteEntry(entry: InstanceEvent): void {
    if (entry.type !== "ConsoleSessionOpened" || this.state.kind === "refused") return;
    this.sessionsSeen++;
    const theirs = entry.payload.ticket_sha256;
    const newer = this.mine !== null ? theirs !== this.mine : this.sessionsSeen > 1;
    if (!newer) return;
    this.newerSession = true;
    if (this.state.kind === "closed") this.set({ kind: "taken-over" });
  }

  private attach(socket: ConsoleSocket): void {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    let opened = false;
    const send = (bytes: Uint8Array): void => {
      if (socket.readyState === OPEN) socket.send(bytes);
    };
    const typed = this.screen.onData((data) => send(encoder.encode(data)));
    const raw = this.screen.onBinary((data) => send(binaryString(data)));
    this.release = () => {
      typed.dispose();
      raw.dispose();
    };
    socket.onopen = () => {
      opened = true;
      this.set({ kind: "open" });
    };
    socket.onmessage = (event) => {
      // binaryType "arraybuffer": binary frames arrive as ArrayBuffers (text ones as strings)
      if (typeof event.data === "string") this.screen.write(event.data);
      else this.screen.write(new Uint8Array(event.data as ArrayBuffer));
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.release?.();
      this.release = null;
      this.socket = null;
      if (!opened) this.set({ kind: "failed" });
      else this.set({ kind: this.newerSession ? "taken-over" : "closed" });
    };
  }

  private set(state: ConsoleState): void {
    this.state = state;
    this.onState(state);
  }
}
