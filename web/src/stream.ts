// Server-Sent Events read with fetch(): an EventSource cannot send the Authorization header,
// and the token must never be in a URL.
import type { Change } from "./api";

export interface SseEvent {
  event: string;
  data: string;
}

/** Splits a text stream into SSE events (comments and `retry:` lines are skipped). */
export class SseParser {
  private buffer = "";

  push(chunk: string): SseEvent[] {
    this.buffer += chunk.replace(/\r\n?/g, "\n");
    const events: SseEvent[] = [];
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length > 0) events.push({ event, data: data.join("\n") });
    }
    return events;
  }
}

/** Reads `response`'s stream, calling `onChange` per change, until it ends. */
export async function readChanges(
  response: Response,
  onChange: (change: Change) => void,
): Promise<string> {
  if (!response.body) return "ended";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "ended";
    for (const event of parser.push(value)) {
      if (event.event === "change") onChange(JSON.parse(event.data) as Change);
      else if (event.event === "overflow" || event.event === "unauthorized") return event.event;
    }
  }
}
