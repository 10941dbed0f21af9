import { describe, expect, it } from "vitest";
import { leavesTerminal, nextFocusable } from "./focus";

const key = (init: KeyboardEventInit): KeyboardEvent => new KeyboardEvent("keydown", init);

describe("leaving the terminal", () => {
  it("is Ctrl-], by the key or by the physical key of another layout", () => {
    expect(leavesTerminal(key({ key: "]", code: "BracketRight", ctrlKey: true }))).toBe(true);
    expect(leavesTerminal(key({ key: "+", code: "BracketRight", ctrlKey: true }))).toBe(true);
    expect(leavesTerminal(key({ key: "]", code: "BracketRight" }))).toBe(false);
    expect(leavesTerminal(key({ key: "Tab", code: "Tab" }))).toBe(false);
    expect(leavesTerminal(key({ key: "Escape", code: "Escape" }))).toBe(false);
    expect(leavesTerminal(key({ key: "c", code: "KeyC", ctrlKey: true }))).toBe(false);
  });

  it("moves on to the next control that the keyboard reaches, skipping the terminal's own", () => {
    document.body.innerHTML = `<button id="before">b</button>
      <div id="screen"><textarea id="inside"></textarea></div>
      <button id="off" disabled>x</button><div hidden><a id="hid" href="#">h</a></div>
      <span tabindex="-1">n</span><a id="after" href="#/x">after</a>`;
    const screen = document.getElementById("screen") as HTMLElement;
    expect(nextFocusable(screen)?.id).toBe("after");
    (document.getElementById("after") as HTMLElement).remove();
    expect(nextFocusable(screen)).toBeNull();
  });
});
