// The keypairs page (a lazy chunk): the tenant's SSH public keys, import one (a line of an
// OpenSSH .pub file), delete one (confirmed). Keypair events name no resource kind on the
// stream: the page reads the list again on their types.
import { h, mount } from "./dom";
import { confirmed, fill, follow, message, onSubmit, table } from "./forms";
import { all, keypairs } from "./netapi";
import type { Context } from "./pages";
import { field } from "./widgets";

export async function keypairsPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const load = async (): Promise<void> => {
    const found = await all((cursor) => keypairs.list(ctx.client, cursor));
    fill(body, found.map((k) => h("tr", { "data-name": k.name },
      h("td", {}, k.name), h("td", {}, k.type), h("td", {}, h("code", {}, k.fingerprint)),
      h("td", {}, confirmed("Delete", `Delete keypair ${k.name}? Instances given it keep their copy.`, said,
        () => keypairs.remove(ctx.client, k.name), () => void load())))),
    "No keypairs yet.", 4);
  };
  const form = h("form", { class: "form", id: "import-keypair" },
    field("Name", h("input", { name: "name", id: "keypair-name", required: true, autocomplete: "off" })),
    field("Public key (one line of a .pub file)", h("textarea", { name: "public_key", id: "keypair-key",
      required: true, rows: "3", spellcheck: "false", placeholder: "ssh-ed25519 AAAA… me@laptop" })),
    h("button", { type: "submit" }, "Import keypair")) as HTMLFormElement;
  onSubmit(form, said, (data) => keypairs.create(ctx.client, { name: data.name ?? "", public_key: data.public_key ?? "" }),
    () => void load());
  await follow(ctx, (change) => change.type.startsWith("Keypair"), load);
  mount(ctx.root, h("h1", {}, "Keypairs"), said, table(["Name", "Type", "Fingerprint", ""], body),
    h("section", {}, h("h2", {}, "Import a public key"), form));
}
