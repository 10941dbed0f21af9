// The console's shell: log in, route by the URL's hash, keep one live stream open.
import "./style.css";
import { ApiError, Client } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { Navigation } from "./navigation";
import { createPage, instancePage, instancesPage, loginPage, type Context } from "./pages";
import { parseRoute, type Route } from "./route";
import { logIn, logOut, token } from "./session";
import { Store } from "./store";
import { readChanges } from "./stream";
import { volumePage, volumesPage } from "./volumes";

const RECONNECT_MS = 2000;
const root = document.getElementById("app") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const store = new Store();
const live = h("span", { class: "live", "aria-live": "polite" }, "offline");
let client: Client | null = null;
let admin: Promise<boolean> = Promise.resolve(false);
let stream: AbortController | null = null;
const navigation = new Navigation();

async function loadInstances(c: Client): Promise<void> {
  const all = [];
  let cursor: string | undefined;
  do {
    const page = await c.listInstances(cursor);
    all.push(...page.items);
    cursor = page.next ?? undefined;
  } while (cursor);
  store.replace(all);
}

async function follow(c: Client, abort: AbortController): Promise<void> {
  while (!abort.signal.aborted) {
    try {
      const response = await c.openStream(abort.signal);
      if (response.status === 401) return signOut();
      if (response.ok) {
        await loadInstances(c); // what changed while the stream was closed
        live.textContent = "live";
        live.classList.add("on");
        await readChanges(response, (change) => store.apply(change));
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      console.warn("event stream", error);
    }
    live.textContent = "reconnecting";
    live.classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function signIn(value: string): void {
  logIn(value);
  start();
  if (parseRoute(location.hash).page === "login") location.hash = "#/instances";
  else void render();
}

function signOut(): void {
  logOut();
  stream?.abort();
  stream = null;
  client = null;
  location.hash = "#/login";
}

function start(): void {
  const saved = token();
  if (!saved || client) return;
  client = new Client(saved);
  stream = new AbortController();
  void follow(client, stream);
  admin = isAdmin(client);
  const links = [["instances", "Instances"], ["volumes", "Volumes"], ["images", "Images"],
    ["networks", "Networks"], ["security-groups", "Security groups"], ["routers", "Routers"],
    ["floating-ips", "Floating IPs"], ["keypairs", "Keypairs"], ["usage", "Usage"]]
    .map(([path, label]) => h("a", { href: `#/${path}` }, label));
  const drawNav = (hosts: boolean): void => mount(nav, ...links,
    ...(hosts ? [h("a", { href: "#/hosts" }, "Hosts"), h("a", { href: "#/tenants" }, "Tenants"),
      h("a", { href: "#/prices" }, "Prices")] : []), live,
    h("button", { type: "button", class: "link", onclick: signOut }, "Log out"));
  drawNav(false);
  void admin.then(drawNav);
}

/** An admin's token may list the hosts; a tenant's is refused (403). */
async function isAdmin(c: Client): Promise<boolean> {
  try {
    await c.listHosts();
    return true;
  } catch {
    return false;
  }
}

async function render(): Promise<void> {
  const visit = navigation.begin();
  const route = parseRoute(location.hash);
  if (!client || route.page === "login") {
    mount(nav);
    loginPage(root, signIn);
    return;
  }
  const page = h("div"); // shown once loaded, and only if the URL still asks for it
  const ctx: Context = {
    client, store, root: page, admin,
    go: (hash) => { location.hash = hash; },
    onLeave: visit.onLeave,
  };
  try {
    if (route.page === "instances") instancesPage(ctx);
    else if (route.page === "create") await createPage(ctx);
    else if (route.page === "instance") await instancePage(ctx, route.id);
    else if (route.page === "volumes") await volumesPage(ctx);
    else if (route.page === "volume") await volumePage(ctx, route.id);
    // Pages few open load on the first visit (their own chunks), keeping the main script small.
    else if (route.page === "usage") await (await import("./usage")).usagePage(ctx);
    else if (route.page === "hosts") await (await import("./hosts")).hostsPage(ctx);
    else if (route.page === "tenants") await (await import("./admin")).tenantsPage(ctx);
    else if (route.page === "tenant") await (await import("./admin")).tenantPage(ctx, route.id);
    else if (route.page === "prices") await (await import("./admin")).pricesPage(ctx);
    else await network(ctx, route);
    if (!visit.current()) return;
    mount(root, page);
    root.focus({ preventScroll: true });
  } catch (error) {
    if (!visit.current()) return;
    if (error instanceof ApiError && error.status === 401) return signOut();
    mount(root, errorBox(error));
  }
}

/** The network, keypair and image pages: each area its own chunk, loaded on its first visit. */
async function network(ctx: Context, route: Route): Promise<void> {
  if (route.page === "networks") await (await import("./networks")).networksPage(ctx);
  else if (route.page === "network") await (await import("./networks")).networkPage(ctx, route.id);
  else if (route.page === "security-groups") await (await import("./secgroups")).securityGroupsPage(ctx);
  else if (route.page === "security-group") await (await import("./secgroups")).securityGroupPage(ctx, route.id);
  else if (route.page === "keypairs") await (await import("./keypairs")).keypairsPage(ctx);
  else if (route.page === "routers") await (await import("./routers")).routersPage(ctx);
  else if (route.page === "router") await (await import("./routers")).routerPage(ctx, route.id);
  else if (route.page === "floating-ips") await (await import("./floatingips")).floatingIpsPage(ctx);
  else if (route.page === "images") await (await import("./images")).imagesPage(ctx);
}

window.addEventListener("hashchange", () => void render());
start();
void render();
