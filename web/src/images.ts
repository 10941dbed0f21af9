// The images page (a lazy chunk): public images and the tenant's own; upload a file (its
// bytes are the request's body, sent with XMLHttpRequest so that a bar shows the upload's
// progress; the token stays in a header) and delete one (confirmed). Live.
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { confirmed, fill, follow, message, ofKind, table } from "./forms";
import { all, images, uploadImage } from "./netapi";
import type { Context } from "./pages";
import { badge, field } from "./widgets";

/** A size as people read it (binary units). */
export function bytes(size: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The image's name from its file's: `debian-12.qcow2` is `debian-12`. */
export function nameFrom(file: string): string {
  return file.replace(/\.(qcow2|raw|img)$/i, "").replace(/[^A-Za-z0-9._-]+/g, "-");
}

export async function imagesPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const load = async (): Promise<void> => {
    const found = await all((cursor) => images.list(ctx.client, cursor));
    fill(body, found.filter((i) => i.status !== "deleted").map((i) => h("tr", { "data-id": i.id },
      h("td", {}, i.name), h("td", {}, badge(i.status)), h("td", {}, i.visibility), h("td", {}, i.disk_format),
      h("td", {}, bytes(i.size_bytes)),
      h("td", {}, i.visibility === "public" ? "" : confirmed("Delete", `Delete image ${i.name}?`, said,
        () => images.remove(ctx.client, i.id), () => void load(), i.status === "deleting")))),
    "No images yet.", 6);
  };
  const file = h("input", { type: "file", name: "file", id: "image-file", required: true }) as HTMLInputElement;
  const name = h("input", { name: "name", id: "image-name", required: true, autocomplete: "off" }) as HTMLInputElement;
  const format = h("select", { name: "disk_format", id: "image-format" },
    h("option", { value: "raw" }, "raw"), h("option", { value: "qcow2" }, "qcow2")) as HTMLSelectElement;
  const bar = h("progress", { id: "upload-progress", max: "100", value: "0", hidden: true }) as HTMLProgressElement;
  const percent = h("span", { id: "upload-percent", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Upload image") as HTMLButtonElement;
  const form = h("form", { class: "form inline", id: "upload-image" }, field("File", file), field("Name", name),
    field("Format", format), submit, h("span", { class: "upload" }, bar, " ", percent)) as HTMLFormElement;
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    if (chosen && !name.value) name.value = nameFrom(chosen.name);
    if (chosen && /\.qcow2$/i.test(chosen.name)) format.value = "qcow2";
  });
  const show = (sent: number, total: number): void => {
    const value = total > 0 ? Math.floor((sent * 100) / total) : 100;
    bar.value = value;
    percent.textContent = `${value}%`;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return;
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    submit.disabled = true;
    bar.hidden = false;
    show(0, chosen.size);
    mount(said, h("p", { class: "muted" }, `Uploading ${chosen.name}…`));
    uploadImage(ctx.client, chosen, name.value.trim(), format.value === "qcow2" ? "qcow2" : "raw", show)
      .then((image) => {
        mount(said, h("p", {}, `Uploaded ${image.name}: ${image.status}.`));
        form.reset();
        void load();
      })
      .catch((error: unknown) => mount(said, errorBox(error, form)))
      .finally(() => { submit.disabled = false; });
  });
  await follow(ctx, ofKind("image"), load);
  mount(ctx.root, h("h1", {}, "Images"), said, form,
    table(["Name", "Status", "Visibility", "Format", "Size", ""], body));
}
