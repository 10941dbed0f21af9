// The typed client of the Virga API: the shapes of /v1/openapi.json the console uses
// (tests/unit/gateway/test_web_client.py checks every path and field here against it).

export interface Flavor {
  name: string;
  vcpus: number;
  ram_mb: number;
  disk_gb: number;
}

export interface Address {
  network: string;
  ip: string;
  mac: string;
}

export type InstanceStatus = "BUILDING" | "RUNNING" | "MIGRATING" | "STOPPED" | "ERROR" | "DELETING" | "DELETED";

export interface Instance {
  id: string;
  name: string;
  tenant_id: string;
  flavor: Flavor;
  status: InstanceStatus;
  host: string | null;
  fault: string | null;
  addresses: Address[];
  /** The floating IPs pointed at its port (absent from views older than them). */
  floating_ips?: { id: string; ip: string | null }[];
  image: string | null;
  network_id: string | null;
  key_name: string | null;
  created_at: string;
  updated_at: string;
}

export interface InstanceEvent {
  event_id: string;
  type: string;
  producer: string;
  occurred_at: string;
  correlation_id: string;
  causation_id: string | null;
  payload: Record<string, unknown>;
}

export interface Change {
  event_id: string;
  type: string;
  kind: string | null;
  id: string;
  tenant_id: string | null;
  occurred_at: string;
  /** When the gateway folded it (the gateway's clock). */
  folded_at?: string | null;
  instance?: Instance | null;
  entry?: InstanceEvent | null;
}

export interface ConsoleTicket {
  id: string;
  url: string;
  expires_at: string;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface Named {
  id: string;
  name: string;
}

export interface Keypair {
  name: string;
}

export interface CreateInstance {
  name: string;
  flavor: string;
  image?: string;
  network?: string;
  key_name?: string;
  /** An admin's: whose instance it is. */
  tenant_id?: string;
}

export type Action = "start" | "stop" | "reboot";

export type VolumeStatus =
  "creating" | "available" | "attaching" | "in-use" | "detaching" | "deleting" | "error";

export interface VolumeAttachment {
  instance_id: string;
  host: string;
  device: string;
}

export type SnapshotStatus = "creating" | "available" | "error" | "deleting";

export interface VolumeSnapshot {
  id: string;
  volume_id: string;
  name: string;
  status: SnapshotStatus;
  /** The volume's size when taken: a volume made from it needs at least this. */
  size_gb: number;
  fault: string | null;
  created_at: string | null;
}

export interface Volume {
  id: string;
  name: string;
  tenant_id: string;
  status: VolumeStatus;
  size_gb: number;
  boot_of: string | null;
  snapshots: VolumeSnapshot[];
  attachments: VolumeAttachment[];
  fault: string | null;
  created_at: string;
  updated_at: string;
}

export interface Resources {
  vcpus: number;
  ram_mb: number;
  disk_gb: number;
}

export interface Host {
  name: string;
  rack: string;
  zone: string;
  capacity: Resources;
  allocated: Resources;
  state: "up" | "down";
  enabled: boolean;
  disabled_reason: string;
}

/** One charge: one resource, one kind of charge, one unit price (as on an invoice). */
export interface ChargeLine {
  resource_id: string;
  kind: string;
  quantity: string;
  unit: string;
  unit_price: string;
  amount: string;
  adjusts?: string | null;
  charge?: string | null;
}

export interface Usage {
  tenant_id: string;
  from: string;
  to: string;
  currency: string | null;
  lines: ChargeLine[];
  total: string;
}

export interface Invoice {
  tenant_id: string;
  period: string;
  currency: string;
  lines: ChargeLine[];
  total: string;
}

export interface FieldError {
  field: string;
  message: string;
}

/** A problem (RFC 9457) the API answered, or a failure to reach it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[],
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export type Fetch = typeof fetch;

export class Client {
  constructor(
    private readonly token: string,
    private readonly fetcher: Fetch = (input, init) => fetch(input, init),
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method, headers: this.headers() };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = this.headers({ "Content-Type": "application/json" });
    }
    const response = await this.fetcher(path, init);
    if (!response.ok) throw await problem(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  listInstances(cursor?: string): Promise<Page<Instance>> {
    const query = cursor ? `?limit=200&cursor=${encodeURIComponent(cursor)}` : "?limit=200";
    return this.request("GET", `/v1/instances${query}`);
  }
  getInstance(id: string): Promise<Instance> {
    return this.request("GET", `/v1/instances/${encodeURIComponent(id)}`);
  }
  listInstanceEvents(id: string): Promise<InstanceEvent[]> {
    return this.request("GET", `/v1/instances/${encodeURIComponent(id)}/events`);
  }
  createInstance(body: CreateInstance): Promise<Instance> {
    return this.request("POST", "/v1/instances", body);
  }
  actOnInstance(id: string, action: Action): Promise<Instance> {
    return this.request("POST", `/v1/instances/${encodeURIComponent(id)}/actions`, { action });
  }
  deleteInstance(id: string): Promise<Instance> {
    return this.request("DELETE", `/v1/instances/${encodeURIComponent(id)}`);
  }
  /** A one-time ticket to the serial console, inside the WebSocket URL to open at once. */
  requestConsole(id: string): Promise<ConsoleTicket> {
    return this.request("POST", `/v1/instances/${encodeURIComponent(id)}/console`);
  }
  listFlavors(): Promise<Page<Flavor>> {
    return this.request("GET", "/v1/flavors?limit=200");
  }
  listImages(): Promise<Page<Named>> {
    return this.request("GET", "/v1/images?limit=200");
  }
  listNetworks(): Promise<Page<Named>> {
    return this.request("GET", "/v1/networks?limit=200");
  }
  listKeypairs(): Promise<Page<Keypair>> {
    return this.request("GET", "/v1/keypairs?limit=200");
  }
  listVolumes(cursor?: string): Promise<Page<Volume>> {
    const query = cursor ? `?limit=200&cursor=${encodeURIComponent(cursor)}` : "?limit=200";
    return this.request("GET", `/v1/volumes${query}`);
  }
  getVolume(id: string): Promise<Volume> {
    return this.request("GET", `/v1/volumes/${encodeURIComponent(id)}`);
  }
  /** A blank volume, or (with `snapshot`) a copy-on-write clone of one of the caller's snapshots. */
  createVolume(body: { name: string; size_gb: number; snapshot?: string; tenant_id?: string }): Promise<Volume> {
    return this.request("POST", "/v1/volumes", body);
  }
  createSnapshot(id: string, name: string): Promise<VolumeSnapshot> {
    return this.request("POST", `/v1/volumes/${encodeURIComponent(id)}/snapshots`, { name });
  }
  deleteSnapshot(id: string, snapshotId: string): Promise<VolumeSnapshot> {
    return this.request("DELETE",
      `/v1/volumes/${encodeURIComponent(id)}/snapshots/${encodeURIComponent(snapshotId)}`);
  }
  extendVolume(id: string, sizeGb: number): Promise<Volume> {
    return this.request("POST", `/v1/volumes/${encodeURIComponent(id)}/actions`,
      { action: "extend", size_gb: sizeGb });
  }
  deleteVolume(id: string): Promise<Volume> {
    return this.request("DELETE", `/v1/volumes/${encodeURIComponent(id)}`);
  }
  attachVolume(id: string, volumeId: string): Promise<Volume> {
    return this.request("POST", `/v1/instances/${encodeURIComponent(id)}/volumes`,
      { volume_id: volumeId });
  }
  detachVolume(id: string, volumeId: string): Promise<Volume> {
    return this.request("DELETE", `/v1/instances/${encodeURIComponent(id)}/volumes/${encodeURIComponent(volumeId)}`);
  }
  /** The caller's charges from the start of this UTC month until now. */
  getUsage(): Promise<Usage> {
    return this.request("GET", "/v1/usage");
  }
  listInvoices(): Promise<Page<Invoice>> {
    return this.request("GET", "/v1/invoices?limit=200");
  }
  listHosts(): Promise<Page<Host>> {
    return this.request("GET", "/v1/hosts?limit=200");
  }
  actOnHost(name: string, action: "disable" | "enable", reason = ""): Promise<Host> {
    return this.request("POST", `/v1/hosts/${encodeURIComponent(name)}/actions`,
      { action, reason });
  }
  /** The live stream's response (`GET /v1/events/stream`), read by `readChanges`. */
  openStream(signal: AbortSignal): Promise<Response> {
    return this.fetcher("/v1/events/stream", { headers: this.headers(), signal });
  }
}

export async function problem(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as {
      title?: string;
      detail?: string;
      errors?: FieldError[];
    };
    return new ApiError(
      response.status,
      body.title ?? response.statusText,
      body.detail ?? "",
      body.errors ?? [],
    );
  } catch {
    return new ApiError(response.status, response.statusText || "Request failed", "", []);
  }
}
