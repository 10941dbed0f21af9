import { describe, expect, it } from "vitest";
import { SseParser, readChanges } from "./stream";
import type { Change } from "./api";

const change = (id: string): Change => ({
  event_id: `e-${id}`, type: "InstanceStarted", kind: "instance", id,
  tenant_id: "t", occurred_at: "2026-12-01T00:00:00Z",
});

describe("SseParser", () => {
  it("splits events across chunks and skips comments", () => {
    const parser = new SseParser();
    expect(parser.push("retry: 2000\n: connected\n\nid: 1\nevent: change\nda")).toEqual([]);
    expect(parser.push('ta: {"a":1}\n\n: heartbeat\n\n')).toEqual([
      { event: "change", data: '{"a":1}' },
    ]);
  });

  it("accepts CRLF line ends and multi-line data", () => {
    const parser = new SseParser();
    expect(parser.push("data: one\r\ndata: two\r\n\r\n")).toEqual([
      { event: "message", data: "one\ntwo" },
    ]);
  });
});

describe("readChanges", () => {
  it("hands every change over and stops at an overflow", async () => {
    const body = [change("a"), change("b")]
      .map((c) => `event: change\ndata: ${JSON.stringify(c)}\n\n`)
      .join("") + "event: overflow\ndata: {}\n\n";
    const seen: string[] = [];
    const end = await readChanges(new Response(body), (c) => seen.push(c.id));
    expect(seen).toEqual(["a", "b"]);
    expect(end).toBe("overflow");
  });
});
