import { describe, expect, it, vi } from "vitest";
import { ApiError, type Client } from "./api";
import { consoleSection } from "./consolePanel";
import type { Context } from "./pages";
import { Store } from "./store";

const opened: { leave: () => void }[] = [];

vi.mock("./terminal", () => ({
  openTerminal: (_host: HTMLElement, leave: () => void) => (opened.push({ leave }), {
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

  it("says how to leave the terminal, and Ctrl-] there moves on to the next control", async () => {
    const client = { requestConsole: () => new Promise(() => undefined) } as unknown as Client;
    const leave: (() => void)[] = [];
    const ctx: Context = {
      client, store: new Store(), root: document.body, go: () => undefined, admin: Promise.resolve(false),
      onLeave: (undo) => leave.push(undo),
    };
    document.body.replaceChildren();
    const section = consoleSection(ctx, "i-2");
    const next = document.createElement("a");
    next.href = "#/timeline";
    document.body.append(section, next);
    expect(section.querySelector(".console-hint")?.textContent).toContain("Ctrl-]");
    opened.length = 0;
    (section.querySelector(".console-open") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(opened).toHaveLength(1));
    opened[0]?.leave();
    expect(document.activeElement).toBe(next);
    next.remove();
    opened[0]?.leave(); // nothing follows: the section's Disconnect button
    expect(document.activeElement).toBe(section.querySelector(".console-close"));
    for (const undo of leave) undo();
  });
});
