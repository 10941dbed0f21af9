// Leaving the serial console's terminal with the keyboard: xterm.js takes every key (Tab and
// Escape go to the guest), so one key, Ctrl-] (virsh console's detach key), moves the focus
// on to the next control of the page instead. The session stays open.

/** Whether `event` is the key that leaves the terminal: Ctrl-] (the physical key, whatever
 * the layout prints on it). */
export function leavesTerminal(event: KeyboardEvent): boolean {
  return event.ctrlKey && !event.metaKey && !event.shiftKey
    && (event.key === "]" || event.code === "BracketRight");
}

const CONTROLS = "a[href], button, input, select, textarea, [tabindex]";

/** The first control after `from` (outside it) in document order that the keyboard reaches,
 * or null when none follows. */
export function nextFocusable(from: Element): HTMLElement | null {
  for (const element of from.ownerDocument.querySelectorAll<HTMLElement>(CONTROLS)) {
    if (from.contains(element)) continue;
    if (!(from.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
    if (element.matches(":disabled") || element.closest("[hidden]")) continue;
    if (element.getAttribute("tabindex") === "-1") continue;
    return element;
  }
  return null;
}
