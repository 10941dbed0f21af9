import { ApiError } from "./api";
import { h } from "./dom";

/** The problem's title and, per field, what is wrong with it; fields in `form` are marked. */
export function errorBox(error: unknown, form?: HTMLFormElement): HTMLElement {
  if (!(error instanceof ApiError)) {
    return h("div", { class: "error", role: "alert" }, String(error));
  }
  for (const field of error.errors) {
    form?.querySelector(`[name="${CSS.escape(field.field)}"]`)?.setAttribute("aria-invalid", "true");
  }
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, error.title),
    error.detail ? h("p", {}, error.detail) : null,
    error.errors.length
      ? h("ul", {}, ...error.errors.map((e) => h("li", {}, h("code", {}, e.field), ": ", e.message)))
      : null,
  );
}
