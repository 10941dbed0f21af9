// Hash routes: every page has a URL that can be shared (the token is never part of it).
export type Route =
  | { page: "login" }
  | { page: "instances" }
  | { page: "create" }
  | { page: "instance"; id: string }
  | { page: "volumes" }
  | { page: "volume"; id: string }
  | { page: "usage" }
  | { page: "hosts" };

const UUID = "([0-9a-f-]{36})";
const PATTERNS: [RegExp, (id: string) => Route][] = [
  [new RegExp(`^/instances/${UUID}$`), (id) => ({ page: "instance", id })],
  [new RegExp(`^/volumes/${UUID}$`), (id) => ({ page: "volume", id })],
];
const FIXED: Record<string, Route> = {
  "/instances/new": { page: "create" },
  "/login": { page: "login" },
  "/volumes": { page: "volumes" },
  "/usage": { page: "usage" },
  "/hosts": { page: "hosts" },
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
    default:
      return `#/${route.page}`;
  }
}
