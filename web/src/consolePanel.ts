// The instance page's Console section: a button opens the serial console in a terminal
// (xterm.js, loaded on that first click), a line says what state it is in.
import { ConsoleSession, type ConsoleState } from "./console";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { nextFocusable } from "./focus";
import type { Context } from "./pages";
import type { Term } from "./terminal";

const SAYS: Record<Exclude<ConsoleState["kind"], "refused">, string> = {
  connecting: "Connecting…",
  open: "Connected: what you type goes to the guest's serial console.",
  closed: "Closed.",
  "taken-over": "Closed by a newer session: another console session took this console over.",
  failed: "The console could not be opened (its ticket was refused, or the guest's host cannot serve it now).",
};

export function consoleSection(ctx: Context, id: string): HTMLElement {
  const state = h("div", { class: "console-state", "data-state": "idle", "aria-live": "polite" },
    "Open the serial console to see the guest's output and type into it.");
  const screen = h("div", { class: "console-screen", hidden: true });
  const openButton = h("button", { type: "button", class: "console-open" }, "Open console");
  const closeButton = h("button", { type: "button", class: "console-close", disabled: true },
    "Disconnect");
  let term: Term | null = null;
  let session: ConsoleSession | null = null;
  let everOpened = false;
  const hint = h("p", { class: "muted console-hint", id: `console-hint-${id}` },
    "Keyboard: in the terminal every key goes to the guest; Ctrl-] leaves it (the session stays open).");
  screen.setAttribute("aria-describedby", hint.id);
  // Ctrl-] in the terminal: on to the next control of the page (Disconnect if none follows).
  const leave = (): void => (nextFocusable(screen) ?? closeButton).focus();

  const show = (next: ConsoleState): void => {
    state.setAttribute("data-state", next.kind);
    if (next.kind === "refused") mount(state, errorBox(next.error));
    else mount(state, h("p", {}, SAYS[next.kind]));
    const live = next.kind === "connecting" || next.kind === "open";
    everOpened ||= next.kind === "open";
    // A click while connected would spend a ticket to take this very session over.
    (openButton as HTMLButtonElement).disabled = live;
    openButton.textContent = everOpened && !live ? "Reconnect" : "Open console";
    (closeButton as HTMLButtonElement).disabled = !live;
    screen.hidden = !everOpened && !live; // no empty terminal under a refusal
    if (next.kind === "open") term?.focus();
  };

  openButton.addEventListener("click", () => {
    void (async () => {
      if (!session) {
        show({ kind: "connecting" });
        screen.hidden = false;
        const { openTerminal } = await import("./terminal");
        term = openTerminal(screen, leave);
        session = new ConsoleSession(ctx.client, id, term, show);
      }
      await session.open();
    })().catch((error: unknown) => mount(state, errorBox(error)));
  });
  closeButton.addEventListener("click", () => session?.disconnect());
  ctx.onLeave(() => {
    session?.disconnect();
    term?.dispose();
  });
  ctx.onLeave(ctx.store.listen((change) => {
    if (change?.id === id && change.entry) session?.noteEntry(change.entry);
  }));
  return h("section", { class: "console" }, h("h2", {}, "Console"),
    h("div", { class: "actions" }, openButton, closeButton), state, hint, screen);
}
