import { describe, expect, it, vi } from "vitest";
import { ApiError, type Client } from "./api";
import { consoleSection } from "./consolePanel";
import type { Context } from "./pages";
import { Store } from "./store";

vi.mock("./terminal", () => ({
  openTerminal: () => ({
    write: () => undefined,
    onData: () => ({ dispose: () => undefined }),
    onBinary: () => ({ dispose: () => undefined }),
    focus: () => undefined,
    dispose: () => undefined,
  }),
}));

describe("the Console section", () => {
  it("shows the 409's title when the instance is not running, and no empty terminal", async () => {
    const refusal = new ApiError(409, "Conflict with the current state", "instance is STOPPED", []);
    const client = { requestConsole: () => Promise.reject(refusal) } as unknown as Client;
    const leave: (() => void)[] = [];
    const ctx: Context = {
      client, store: new Store(), root: document.body, go: () => undefined, admin: Promise.resolve(false),
      onLeave: (undo) => leave.push(undo),
    };
    const section = consoleSection(ctx, "i-1");
    document.body.append(section);
    const open = section.querySelector(".console-open") as HTMLButtonElement;
    open.click();
    await vi.waitFor(() => {
      expect(section.querySelector(".console-state")?.getAttribute("data-state")).toBe("refused");
    });
    expect(section.querySelector(".console-state strong")?.textContent)
      .toBe("Conflict with the current state");
    expect((section.querySelector(".console-screen") as HTMLElement).hidden).toBe(true);
    expect(open.disabled).toBe(false);
    for (const undo of leave) undo();
  });
});
