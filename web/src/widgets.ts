// Small pieces the pages share: labelled fields, definition rows, buttons, status badges.
import { h } from "./dom";

export function field(label: string, control: HTMLElement): HTMLElement {
  return h("label", { for: control.id }, h("span", {}, label), control);
}

export function row(term: string, value: Node | string): [HTMLElement, HTMLElement] {
  return [h("dt", {}, term), h("dd", {}, value)];
}

export function button(label: string, disabled: boolean, onClick: () => void, kind = ""): HTMLElement {
  return h("button", { type: "button", class: kind, disabled, onclick: onClick }, label);
}

/** A status as a badge; its class (`status-in-use`...) gives its colour. */
export function badge(status: string): HTMLElement {
  return h("span", { class: `status status-${status.toLowerCase()}` }, status);
}
