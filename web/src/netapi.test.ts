// The network, keypair and image pages' client calls, the image upload, and their view logic.
import { describe, expect, it } from "vitest";
import { ApiError, Client, type Instance } from "./api";
import { portLabel } from "./floatingips";
import { bytes, nameFrom } from "./images";
import { all, floatingIps, images, keypairs, networks, type Port, routers, securityGroups, uploadImage } from "./netapi";
import { href, parseRoute } from "./route";
import { portRange, ruleOf } from "./secgroups";

const NET = "3b1e0000-0000-4000-8000-000000000000";
const SG = "c4d20000-0000-4000-8000-000000000000";
const RT = "a9b10000-0000-4000-8000-000000000000";
const FIP = "f10a0000-0000-4000-8000-000000000000";
const EXT = "e7a00000-0000-4000-8000-000000000000";

function recorder(answer: (url: string) => unknown = () => ({ items: [], next: null })) {
  const calls: [string, string, unknown][] = [];
  const client = new Client("secret-token", async (input, init) => {
    calls.push([init?.method ?? "GET", String(input), init?.body ? JSON.parse(String(init.body)) : undefined]);
    expect((init?.headers as Record<string, string>).Authorization).toBe("Bearer secret-token");
    return new Response(JSON.stringify(answer(String(input))), { status: 200 });
  });
  return { client, calls };
}

describe("the network, security group, keypair, router and floating IP calls", () => {
  it("call the documented routes with the documented bodies", async () => {
    const { client: c, calls } = recorder();
    await networks.list(c);
    await networks.create(c, { name: "web", cidr: "fd00:1::/64", dhcp: false });
    await networks.get(c, NET);
    await networks.ports(c, NET);
    await networks.portsOf(c, "i-1");
    await networks.remove(c, NET);
    await networks.external(c);
    await securityGroups.create(c, { name: "ssh" });
    await securityGroups.addRule(c, SG, { direction: "ingress", protocol: "tcp", port_min: 22 });
    await securityGroups.removeRule(c, SG, "r/1");
    await securityGroups.remove(c, SG);
    await keypairs.create(c, { name: "laptop", public_key: "ssh-ed25519 AAAA" });
    await keypairs.remove(c, "lap top");
    await routers.create(c, { name: "edge", external_network_id: EXT });
    await routers.attach(c, RT, NET);
    await routers.detach(c, RT, NET);
    await routers.remove(c, RT);
    await floatingIps.allocate(c, EXT);
    await floatingIps.associate(c, FIP, "p1");
    await floatingIps.associate(c, FIP, null);
    await floatingIps.release(c, FIP);
    await images.remove(c, "img");
    expect(calls).toEqual([
      ["GET", "/v1/networks?limit=200", undefined],
      ["POST", "/v1/networks", { name: "web", cidr: "fd00:1::/64", dhcp: false }],
      ["GET", `/v1/networks/${NET}`, undefined],
      ["GET", `/v1/ports?limit=200&network_id=${NET}`, undefined],
      ["GET", "/v1/ports?limit=200&instance_id=i-1", undefined],
      ["DELETE", `/v1/networks/${NET}`, undefined],
      ["GET", "/v1/external-networks?limit=200", undefined],
      ["POST", "/v1/security-groups", { name: "ssh" }],
      ["POST", `/v1/security-groups/${SG}/rules`, { direction: "ingress", protocol: "tcp", port_min: 22 }],
      ["DELETE", `/v1/security-groups/${SG}/rules/r%2F1`, undefined],
      ["DELETE", `/v1/security-groups/${SG}`, undefined],
      ["POST", "/v1/keypairs", { name: "laptop", public_key: "ssh-ed25519 AAAA" }],
      ["DELETE", "/v1/keypairs/lap%20top", undefined],
      ["POST", "/v1/routers", { name: "edge", external_network_id: EXT }],
      ["POST", `/v1/routers/${RT}/interfaces`, { network_id: NET }],
      ["DELETE", `/v1/routers/${RT}/interfaces/${NET}`, undefined],
      ["DELETE", `/v1/routers/${RT}`, undefined],
      ["POST", "/v1/floating-ips", { external_network_id: EXT }],
      ["PUT", `/v1/floating-ips/${FIP}`, { port_id: "p1" }],
      ["PUT", `/v1/floating-ips/${FIP}`, { port_id: null }],
      ["DELETE", `/v1/floating-ips/${FIP}`, undefined],
      ["DELETE", "/v1/images/img", undefined],
    ]);
  });

  it("walk every page of a list with its cursor", async () => {
    const { client, calls } = recorder((url) => url.includes("cursor=")
      ? { items: [{ id: "b" }], next: null } : { items: [{ id: "a" }], next: "c/1" });
    const found = await all((cursor) => routers.list(client, cursor));
    expect(found.map((r) => r.id)).toEqual(["a", "b"]);
    expect(calls.map(([, url]) => url)).toEqual(["/v1/routers?limit=200", "/v1/routers?limit=200&cursor=c%2F1"]);
  });
});

/** An XMLHttpRequest stand-in: records what is sent, then plays the upload's events. */
class FakeXhr extends EventTarget {
  readonly upload = new EventTarget();
  readonly headers: Record<string, string> = {};
  url = "";
  method = "";
  status = 0;
  statusText = "";
  responseText = "";
  body: unknown = null;
  constructor(private readonly answer: { status: number; body: unknown }, private readonly total: number) {
    super();
  }
  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }
  send(body: unknown): void {
    this.body = body;
    for (const loaded of [0, this.total / 2, this.total]) {
      this.upload.dispatchEvent(Object.assign(new Event("progress"), { lengthComputable: true, loaded, total: this.total }));
    }
    this.status = this.answer.status;
    this.responseText = JSON.stringify(this.answer.body);
    this.dispatchEvent(new Event("load"));
  }
}

describe("the image upload", () => {
  it("sends the file as the body with the token in a header, and reports its progress to 100%", async () => {
    const file = new Blob([new Uint8Array(2048)]);
    const xhr = new FakeXhr({ status: 201, body: { id: "i1", name: "tiny", status: "available" } }, 2048);
    const seen: number[] = [];
    const image = await uploadImage(new Client("secret-token"), file, "tiny", "raw",
      (sent, total) => seen.push(Math.round((sent * 100) / total)), () => xhr as unknown as XMLHttpRequest);
    expect(image.status).toBe("available");
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe("/v1/images?name=tiny&disk_format=raw");
    expect(xhr.url).not.toContain("secret-token");
    expect(xhr.headers.Authorization).toBe("Bearer secret-token");
    expect(xhr.headers["Content-Type"]).toBe("application/octet-stream");
    expect(xhr.body).toBe(file);
    expect(seen).toEqual([0, 50, 100]);
  });

  it("turns a refusal into an ApiError naming the field", async () => {
    const problem = { title: "Not an image", status: 422, errors: [{ field: "body", message: "not qcow2" }] };
    const xhr = new FakeXhr({ status: 422, body: problem }, 10);
    const error = await uploadImage(new Client("t"), new Blob(["x"]), "bad", "qcow2", () => undefined,
      () => xhr as unknown as XMLHttpRequest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).errors[0].field).toBe("body");
  });
});

describe("the network pages' logic", () => {
  it("gives every new page a URL and reads it back", () => {
    for (const route of [{ page: "networks" }, { page: "network", id: NET }, { page: "security-groups" },
      { page: "security-group", id: SG }, { page: "keypairs" }, { page: "routers" }, { page: "router", id: RT },
      { page: "floating-ips" }, { page: "images" }] as const) {
      expect(parseRoute(href(route))).toEqual(route);
    }
  });

  it("reads a rule from the form, leaving empty fields to the API, and shows its ports", () => {
    expect(ruleOf({ direction: "ingress", protocol: "tcp", port_min: "8000", port_max: "8080", remote_cidr: "0.0.0.0/0" }))
      .toEqual({ direction: "ingress", protocol: "tcp", port_min: 8000, port_max: 8080, remote_cidr: "0.0.0.0/0" });
    expect(ruleOf({ direction: "egress", remote_group: SG })).toEqual({ direction: "egress", remote_group: SG });
    expect(portRange({ port_min: null, port_max: null })).toBe("any");
    expect(portRange({ port_min: 22, port_max: 22 })).toBe("22");
    expect(portRange({ port_min: 8000, port_max: 8080 })).toBe("8000-8080");
  });

  it("names an image from its file and sizes in binary units", () => {
    expect(nameFrom("debian 12.qcow2")).toBe("debian-12");
    expect(bytes(512)).toBe("512 B");
    expect(bytes(2 * 1024 * 1024)).toBe("2.0 MiB");
  });

  it("offers a port by its instance's name and its addresses", () => {
    const port = { id: "p1", name: "", instance_id: "i1", ips: ["10.0.0.5"] } as Port;
    const instances = new Map([["i1", { name: "app" } as Instance]]);
    expect(portLabel(port, instances)).toBe("app (10.0.0.5)");
    expect(portLabel({ ...port, instance_id: null, name: "spare", ips: [] }, instances)).toBe("spare (no address)");
  });
});
