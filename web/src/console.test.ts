import { describe, expect, it } from "vitest";
import { ApiError, Client, type ConsoleTicket, type InstanceEvent } from "./api";
import { ConsoleSession, binaryString, sha256Hex, type ConsoleSocket, type ConsoleState } from "./console";

const TICKET = "vct_one-time";
const URL_ = `ws://gateway.test/v1/instances/i-1/console/ws?ticket=${TICKET}`;

class FakeSocket implements ConsoleSocket {
  binaryType: BinaryType = "blob";
  readyState = 0;
  sent: Uint8Array[] = [];
  closedWith: number | undefined;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  // What the server does:
  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  output(data: ArrayBuffer | string): void {
    this.onmessage?.(new MessageEvent("message", { data }));
  }
  end(): void {
    this.readyState = 3;
    this.onclose?.(new CloseEvent("close", { code: 1000 }));
  }
}

class FakeScreen {
  written: (Uint8Array | string)[] = [];
  typed = new Set<(data: string) => void>();
  binary = new Set<(data: string) => void>();
  write(data: Uint8Array | string): void {
    this.written.push(data);
  }
  onData(listener: (data: string) => void) {
    this.typed.add(listener);
    return { dispose: () => this.typed.delete(listener) };
  }
  onBinary(listener: (data: string) => void) {
    this.binary.add(listener);
    return { dispose: () => this.binary.delete(listener) };
  }
  type(data: string): void {
    for (const listener of this.typed) listener(data);
  }
}

function setUp(answer: () => Promise<ConsoleTicket> = async () =>
  ({ id: "t", url: URL_, expires_at: "2026-12-01T00:01:00Z" })) {
  const sockets: FakeSocket[] = [];
  const states: ConsoleState["kind"][] = [];
  const screen = new FakeScreen();
  const asked: string[] = [];
  const session = new ConsoleSession(
    { requestConsole: (id) => { asked.push(id); return answer(); } },
    "i-1", screen, (s) => states.push(s.kind),
    (url) => { const s = new FakeSocket(url); sockets.push(s); return s; },
  );
  return { session, sockets, states, screen, asked };
}

const opened = (sha: string): InstanceEvent => ({
  event_id: "e", type: "ConsoleSessionOpened", producer: "compute", occurred_at: "x",
  correlation_id: "c", causation_id: null, payload: { host: "h", ticket_sha256: sha, session_id: "s" },
});

describe("the console's ticket", () => {
  it("is asked for with the token in a header, by POST, and opens the URL it names", async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const client = new Client("secret-token", async (input, init) => {
      calls.push([String(input), init]);
      return new Response(JSON.stringify({ id: "t", url: URL_, expires_at: "x" }), { status: 201 });
    });
    const { sockets, states } = setUp();
    const session = new ConsoleSession(client, "i-1", new FakeScreen(), (s) => states.push(s.kind),
      (url) => { const s = new FakeSocket(url); sockets.push(s); return s; });
    await session.open();
    expect(calls[0][0]).toBe("/v1/instances/i-1/console");
    expect(calls[0][1]?.method).toBe("POST");
    expect((calls[0][1]?.headers as Record<string, string>).Authorization).toBe("Bearer secret-token");
    expect(sockets.map((s) => s.url)).toEqual([URL_]);
    expect(sockets[0].binaryType).toBe("arraybuffer");
    // Used, never kept: only the socket (whose URL it is) holds it, as long as it is open.
    expect(JSON.stringify({ ...session, socket: null })).not.toContain(TICKET);
  });

  it("shows a refusal (409: not running) and opens no socket", async () => {
    const refusal = new ApiError(409, "Conflict", "instance i-1 is STOPPED", []);
    const { session, sockets, states } = setUp(async () => { throw refusal; });
    await session.open();
    expect(states).toEqual(["connecting", "refused"]);
    expect(session.state).toEqual({ kind: "refused", error: refusal });
    expect(sockets).toEqual([]);
  });
});

describe("the console's socket", () => {
  it("writes the guest's bytes and sends keystrokes as binary frames", async () => {
    const { session, sockets, states, screen } = setUp();
    await session.open();
    const socket = sockets[0];
    screen.type("lost"); // not open yet: nothing is sent
    socket.open();
    socket.output(new TextEncoder().encode("/ # ").buffer as ArrayBuffer);
    expect(new TextDecoder().decode(screen.written[0] as Uint8Array)).toBe("/ # ");
    screen.type("echo hi\r");
    for (const listener of screen.binary) listener("\x1b[M !!");
    expect(sockets[0].sent.map((b) => new TextDecoder().decode(b))).toEqual(["echo hi\r", "\x1b[M !!"]);
    expect(states).toEqual(["connecting", "open"]);
    socket.end();
    expect(states.at(-1)).toBe("closed");
    expect(screen.typed.size).toBe(0); // no keystroke goes to a closed socket
  });

  it("says when it closed before opening", async () => {
    const { session, sockets, states } = setUp();
    await session.open();
    sockets[0].end();
    expect(states).toEqual(["connecting", "failed"]);
  });

  it("says when a newer session took the console over, whichever comes first", async () => {
    const mine = await sha256Hex(TICKET);
    for (const closeFirst of [true, false]) {
      const { session, sockets, states } = setUp();
      await session.open();
      sockets[0].open();
      session.noteEntry(opened(mine ?? "mine")); // this session's own: no takeover
      if (closeFirst) sockets[0].end();
      expect(session.state.kind).toBe(closeFirst ? "closed" : "open");
      session.noteEntry(opened("another-ticket"));
      if (!closeFirst) sockets[0].end();
      expect(states.at(-1)).toBe("taken-over");
    }
  });

  it("closes its socket on a second click and when left, and ignores the old one after", async () => {
    const { session, sockets, states, screen } = setUp();
    await session.open();
    sockets[0].open();
    await session.open();
    expect(sockets[0].closedWith).toBe(1000);
    sockets[0].end(); // late close of the replaced socket: ignored
    sockets[1].open();
    expect(states).toEqual(["connecting", "open", "closed", "connecting", "open"]);
    expect(screen.typed.size).toBe(1);
    session.disconnect();
    expect(sockets[1].closedWith).toBe(1000);
    expect(screen.typed.size).toBe(0);
    expect(states.at(-1)).toBe("closed");
  });
});

describe("binaryString", () => {
  it("keeps one byte per character", () => {
    expect([...binaryString("\x00\xff A")]).toEqual([0, 255, 32, 65]);
  });
});
