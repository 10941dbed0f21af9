// xterm.js in an element, fitted to it. Loaded on the first click on "Open console" (a chunk
// of its own), so the other pages do not carry it.
import "@xterm/xterm/css/xterm.css";
import "./terminal.css";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import type { Screen } from "./console";
import { leavesTerminal } from "./focus";

export interface Term extends Screen {
  focus(): void;
  dispose(): void;
}

// The colours terminal.css gives the rows: xterm.js's own defaults (the Tango palette).
const ANSI = [
  "#2e3436", "#cc0000", "#4e9a06", "#c4a000", "#3465a4", "#75507b", "#06989a", "#d3d7cf",
  "#555753", "#ef2929", "#8ae234", "#fce94f", "#729fcf", "#ad7fa8", "#34e2e2", "#eeeeec",
];
const THEME = {
  foreground: "#ffffff", background: "#000000", cursor: "#ffffff", cursorAccent: "#000000",
  black: ANSI[0], red: ANSI[1], green: ANSI[2], yellow: ANSI[3], blue: ANSI[4],
  magenta: ANSI[5], cyan: ANSI[6], white: ANSI[7], brightBlack: ANSI[8], brightRed: ANSI[9],
  brightGreen: ANSI[10], brightYellow: ANSI[11], brightBlue: ANSI[12],
  brightMagenta: ANSI[13], brightCyan: ANSI[14], brightWhite: ANSI[15],
};

/** A terminal in `host`; Ctrl-] calls `leave` (the key never reaches the guest). */
export function openTerminal(host: HTMLElement, leave: () => void): Term {
  const terminal = new Terminal({
    theme: THEME, fontFamily: "monospace", fontSize: 14, cursorBlink: false, scrollback: 5000,
  });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  terminal.open(host);
  fit.fit();
  terminal.attachCustomKeyEventHandler((event) => {
    if (!leavesTerminal(event)) return true;
    if (event.type === "keydown") {
      event.preventDefault();
      terminal.blur();
      leave();
    }
    return false;
  });
  // The serial line has no window size to tell the guest: the terminal fits its box only.
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(host);
  return {
    write: (data) => terminal.write(data),
    onData: (listener) => terminal.onData(listener),
    onBinary: (listener) => terminal.onBinary(listener),
    focus: () => terminal.focus(),
    dispose: () => {
      observer.disconnect();
      terminal.dispose();
    },
  };
}
