// Hash routes: every page has a URL that can be shared (the token is never part of it).
export type Route =
  | { page: "login" }
  | { page: "instances" }
  | { page: "create" }
  | { page: "instance"; id: string }
  | { page: "volumes" }
  | { page: "volume"; id: string }
  | { page: "usage" }
  | { page: "hosts" }
  | { page: "tenants" }
  | { page: "tenant"; id: string }
  | { page: "prices" }
  | { page: "networks" }
  | { page: "network"; id: string }
  | { page: "security-groups" }
  | { page: "security-group"; id: string }
  | { page: "keypairs" }
  | { page: "routers" }
  | { page: "router"; id: string }
  | { page: "floating-ips" }
  | { page: "images" };

const UUID = "([0-9a-f-]{36})";
const PATTERNS: [RegExp, (id: string) => Route][] = [
  [new RegExp(`^/instances/${UUID}$`), (id) => ({ page: "instance", id })],
  [new RegExp(`^/volumes/${UUID}$`), (id) => ({ page: "volume", id })],
  [new RegExp(`^/networks/${UUID}$`), (id) => ({ page: "network", id })],
  [new RegExp(`^/security-groups/${UUID}$`), (id) => ({ page: "security-group", id })],
  [new RegExp(`^/routers/${UUID}$`), (id) => ({ page: "router", id })],
  [new RegExp(`^/tenants/${UUID}$`), (id) => ({ page: "tenant", id })],
];
const FIXED: Record<string, Route> = {
  "/instances/new": { page: "create" },
  "/login": { page: "login" },
  "/volumes": { page: "volumes" },
  "/usage": { page: "usage" },
  "/hosts": { page: "hosts" },
  "/tenants": { page: "tenants" },
  "/prices": { page: "prices" },
  "/networks": { page: "networks" },
  "/security-groups": { page: "security-groups" },
  "/keypairs": { page: "keypairs" },
  "/routers": { page: "routers" },
  "/floating-ips": { page: "floating-ips" },
  "/images": { page: "images" },
};

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/instances";
  for (const [pattern, make] of PATTERNS) {
    const found = pattern.exec(path);
    if (found) return make(found[1]);
  }
  return FIXED[path] ?? { page: "instances" };
}

export function href(route: Route): string {
  switch (route.page) {
    case "create":
      return "#/instances/new";
    case "instance":
      return `#/instances/${route.id}`;
    case "volume":
      return `#/volumes/${route.id}`;
    case "network":
      return `#/networks/${route.id}`;
    case "security-group":
      return `#/security-groups/${route.id}`;
    case "router":
      return `#/routers/${route.id}`;
    case "tenant":
      return `#/tenants/${route.id}`;
    default:
      return `#/${route.page}`;
  }
}
