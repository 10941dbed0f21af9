// Hash routes: every page has a URL that can be shared (the token is never part of it).
export type Route =
  | { page: "login" }
  | { page: "instances" }
  | { page: "create" }
  | { page: "instance"; id: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/instances";
  const instance = /^\/instances\/([0-9a-f-]{36})$/.exec(path);
  if (instance) return { page: "instance", id: instance[1] };
  if (path === "/instances/new") return { page: "create" };
  if (path === "/login") return { page: "login" };
  return { page: "instances" };
}

export function href(route: Route): string {
  switch (route.page) {
    case "login":
      return "#/login";
    case "instances":
      return "#/instances";
    case "create":
      return "#/instances/new";
    case "instance":
      return `#/instances/${route.id}`;
  }
}
