// The typed client of the network, keypair and image routes (tests/unit/gateway/test_web.py
// checks every path and field here against /v1/openapi.json). Only the lazily loaded pages
// import it, so it stays out of the main script.
import { type Client, type Page, problem } from "./api";

export type NetStatus = "BUILDING" | "ACTIVE" | "DOWN" | "DELETING" | "DELETED" | "ERROR";

export interface Pool {
  start: string;
  end: string;
}

export interface Network {
  id: string;
  name: string;
  tenant_id: string;
  cidr: string;
  ip_version: 4 | 6;
  status: NetStatus;
  fault: string | null;
  vni: number | null;
  gateway_ip: string | null;
  allocation_pools: Pool[];
  dhcp: boolean;
  router_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface FloatingIpRef {
  id: string;
  ip: string | null;
}

export interface Port {
  id: string;
  name: string;
  tenant_id: string;
  network_id: string;
  status: NetStatus;
  fault: string | null;
  mac: string | null;
  ips: string[];
  security_groups: string[];
  instance_id: string | null;
  host: string | null;
  floating_ips: FloatingIpRef[];
  created_at: string;
  updated_at: string;
}

export type Direction = "ingress" | "egress";
export type Protocol = "any" | "tcp" | "udp" | "icmp" | "icmpv6";

export interface RuleBody {
  direction: Direction;
  ethertype?: "IPv4" | "IPv6";
  protocol?: Protocol;
  port_min?: number | null;
  port_max?: number | null;
  remote_cidr?: string | null;
  remote_group?: string | null;
}

export interface Rule extends RuleBody {
  id: string;
  ethertype: "IPv4" | "IPv6";
  protocol: Protocol;
}

export interface SecurityGroup {
  id: string;
  name: string;
  tenant_id: string;
  default: boolean;
  rules: Rule[];
}

export interface KeypairView {
  name: string;
  tenant_id: string;
  fingerprint: string;
  type: string;
  public_key: string;
  created_at: string;
}

export interface ExternalNetwork {
  id: string;
  name: string;
  cidr: string;
  gateway_ip: string;
  status: NetStatus;
  fault: string | null;
}

export interface RouterInterface {
  network_id: string;
  gateway_ip: string | null;
  status: string;
}

export interface Router {
  id: string;
  name: string;
  tenant_id: string;
  external_network_id: string;
  external_ip: string | null;
  status: NetStatus;
  fault: string | null;
  interfaces: RouterInterface[];
  created_at: string;
  updated_at: string;
}

export interface FloatingIp {
  id: string;
  tenant_id: string;
  external_network_id: string;
  ip: string | null;
  status: NetStatus;
  fault: string | null;
  port_id: string | null;
  fixed_ip: string | null;
  created_at: string;
  updated_at: string;
}

export interface Image {
  id: string;
  name: string;
  tenant_id: string | null;
  visibility: "private" | "public";
  disk_format: "raw" | "qcow2";
  status: "importing" | "available" | "deleting" | "deleted" | "error";
  size_bytes: number;
  sha256: string | null;
  fault: string | null;
  created_at: string;
  updated_at: string;
}

const id = (value: string): string => encodeURIComponent(value);

/** Every page of a list route, walked with its cursor. */
export async function all<T>(list: (cursor?: string) => Promise<Page<T>>): Promise<T[]> {
  const found: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    found.push(...page.items);
    cursor = page.next ?? undefined;
  } while (cursor);
  return found;
}

const query = (cursor?: string, extra = ""): string =>
  `?limit=200${extra}${cursor ? `&cursor=${id(cursor)}` : ""}`;

export const networks = {
  list: (c: Client, cursor?: string): Promise<Page<Network>> =>
    c.request("GET", `/v1/networks${query(cursor)}`),
  get: (c: Client, networkId: string): Promise<Network> => c.request("GET", `/v1/networks/${id(networkId)}`),
  create: (c: Client, body: { name: string; cidr: string; dhcp?: boolean; tenant_id?: string }): Promise<Network> =>
    c.request("POST", "/v1/networks", body),
  remove: (c: Client, networkId: string): Promise<Network> => c.request("DELETE", `/v1/networks/${id(networkId)}`),
  ports: (c: Client, networkId: string, cursor?: string): Promise<Page<Port>> =>
    c.request("GET", `/v1/ports${query(cursor, `&network_id=${id(networkId)}`)}`),
  portsOf: (c: Client, instanceId: string): Promise<Page<Port>> =>
    c.request("GET", `/v1/ports${query(undefined, `&instance_id=${id(instanceId)}`)}`),
  allPorts: (c: Client, cursor?: string): Promise<Page<Port>> => c.request("GET", `/v1/ports${query(cursor)}`),
  external: (c: Client): Promise<Page<ExternalNetwork>> => c.request("GET", "/v1/external-networks?limit=200"),
};

export const securityGroups = {
  list: (c: Client, cursor?: string): Promise<Page<SecurityGroup>> =>
    c.request("GET", `/v1/security-groups${query(cursor)}`),
  get: (c: Client, groupId: string): Promise<SecurityGroup> =>
    c.request("GET", `/v1/security-groups/${id(groupId)}`),
  create: (c: Client, body: { name: string; rules?: RuleBody[] }): Promise<SecurityGroup> =>
    c.request("POST", "/v1/security-groups", body),
  remove: (c: Client, groupId: string): Promise<void> => c.request("DELETE", `/v1/security-groups/${id(groupId)}`),
  addRule: (c: Client, groupId: string, rule: RuleBody): Promise<Rule> =>
    c.request("POST", `/v1/security-groups/${id(groupId)}/rules`, rule),
  removeRule: (c: Client, groupId: string, ruleId: string): Promise<void> =>
    c.request("DELETE", `/v1/security-groups/${id(groupId)}/rules/${id(ruleId)}`),
};

export const keypairs = {
  list: (c: Client, cursor?: string): Promise<Page<KeypairView>> => c.request("GET", `/v1/keypairs${query(cursor)}`),
  create: (c: Client, body: { name: string; public_key: string }): Promise<KeypairView> =>
    c.request("POST", "/v1/keypairs", body),
  remove: (c: Client, name: string): Promise<void> => c.request("DELETE", `/v1/keypairs/${id(name)}`),
};

export const routers = {
  list: (c: Client, cursor?: string): Promise<Page<Router>> => c.request("GET", `/v1/routers${query(cursor)}`),
  get: (c: Client, routerId: string): Promise<Router> => c.request("GET", `/v1/routers/${id(routerId)}`),
  create: (c: Client, body: { name: string; external_network_id: string }): Promise<Router> =>
    c.request("POST", "/v1/routers", body),
  remove: (c: Client, routerId: string): Promise<Router> => c.request("DELETE", `/v1/routers/${id(routerId)}`),
  attach: (c: Client, routerId: string, networkId: string): Promise<Router> =>
    c.request("POST", `/v1/routers/${id(routerId)}/interfaces`, { network_id: networkId }),
  detach: (c: Client, routerId: string, networkId: string): Promise<Router> =>
    c.request("DELETE", `/v1/routers/${id(routerId)}/interfaces/${id(networkId)}`),
};

export const floatingIps = {
  list: (c: Client, cursor?: string): Promise<Page<FloatingIp>> =>
    c.request("GET", `/v1/floating-ips${query(cursor)}`),
  allocate: (c: Client, externalNetworkId: string): Promise<FloatingIp> =>
    c.request("POST", "/v1/floating-ips", { external_network_id: externalNetworkId }),
  /** Points it at a port (null: dissociates it). */
  associate: (c: Client, fipId: string, portId: string | null): Promise<FloatingIp> =>
    c.request("PUT", `/v1/floating-ips/${id(fipId)}`, { port_id: portId }),
  release: (c: Client, fipId: string): Promise<FloatingIp> => c.request("DELETE", `/v1/floating-ips/${id(fipId)}`),
};

export const images = {
  list: (c: Client, cursor?: string): Promise<Page<Image>> => c.request("GET", `/v1/images${query(cursor)}`),
  remove: (c: Client, imageId: string): Promise<Image> => c.request("DELETE", `/v1/images/${id(imageId)}`),
};

export type Progress = (sent: number, total: number) => void;

/** Uploads an image's bytes as the body (the gateway streams it into the pool), reporting
 * the upload's progress; the token goes in the Authorization header, as for every call.
 * XMLHttpRequest, because fetch reports no upload progress. */
export function uploadImage(c: Client, file: Blob, name: string, format: "raw" | "qcow2",
  onProgress: Progress, open: () => XMLHttpRequest = () => new XMLHttpRequest()): Promise<Image> {
  const xhr = open();
  const params = new URLSearchParams({ name, disk_format: format });
  xhr.open("POST", `/v1/images?${params.toString()}`);
  for (const [header, value] of Object.entries(c.headers({ "Content-Type": "application/octet-stream" }))) {
    xhr.setRequestHeader(header, value);
  }
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) onProgress(event.loaded, event.total);
  });
  return new Promise((resolve, reject) => {
    xhr.addEventListener("load", () => {
      const response = new Response(xhr.responseText || null, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) resolve(response.json() as Promise<Image>);
      else void problem(response).then(reject);
    });
    xhr.addEventListener("error", () => reject(new Error("The upload failed: the gateway could not be reached.")));
    xhr.send(file);
  });
}
