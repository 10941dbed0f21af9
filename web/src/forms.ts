// What the resource pages share: a list table, a form that sends what it holds and shows the
// problem (title, fields marked), a confirmed destructive button, and following the stream.
import type { Change } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { reloadOn } from "./live";
import type { Context } from "./pages";
import { button } from "./widgets";

export function table(headers: string[], body: HTMLElement): HTMLElement {
  return h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ...headers.map((c) => h("th", {}, c)))), body);
}

/** Fills `body` with `rows`, or one row saying `empty`. */
export function fill(body: HTMLElement, rows: HTMLElement[], empty: string, columns: number): void {
  mount(body, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: String(columns) }, empty))]));
}

/** The form's values, empty ones left out. */
export function values(form: HTMLFormElement): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (typeof value === "string" && value.trim() !== "") found[key] = value.trim();
  }
  return found;
}

/** Runs `call` on submit: on success `done` (the form is reset), else the problem in `message`. */
export function onSubmit<T>(form: HTMLFormElement, message: HTMLElement, call: (data: Record<string, string>) => Promise<T>,
  done: (answer: T) => void = () => undefined): void {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    call(values(form)).then((answer) => {
      mount(message);
      form.reset();
      done(answer);
    }).catch((error: unknown) => mount(message, errorBox(error, form)));
  });
}

/** A destructive button: asks first, then calls; the problem (a 409...) goes in `message`. */
export function confirmed(label: string, question: string, message: HTMLElement, call: () => Promise<unknown>,
  after: () => void = () => undefined, disabled = false): HTMLElement {
  return button(label, disabled, () => {
    if (!window.confirm(question)) return;
    call().then(() => {
      mount(message);
      after();
    }).catch((error: unknown) => mount(message, errorBox(error)));
  }, "danger");
}

/** Loads, then loads again after each change `wanted` picks (and after a reconnect). */
export async function follow(ctx: Context, wanted: (change: Change) => boolean, load: () => Promise<void>): Promise<void> {
  await load();
  reloadOn(ctx, (change) => change === null || wanted(change), load);
}

export const ofKind = (...kinds: string[]) => (change: Change): boolean => kinds.includes(change.kind ?? "");

export function message(): HTMLElement {
  return h("div", { "aria-live": "polite" });
}
