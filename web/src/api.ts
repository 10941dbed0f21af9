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
}

export type Action = "start" | "stop" | "reboot";

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
