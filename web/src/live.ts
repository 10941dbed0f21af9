// Pages that show more than instances follow the live stream too: a change names the kind and
// id of the resource it is about, and the page reads that resource again (no polling loop).
import { ApiError, type Change, type Client, type Volume, type VolumeAttachment } from "./api";
import type { Context } from "./pages";

/** Calls `load` after every change `wanted` picks (null: the stream reconnected and may have
 * missed some), one load at a time: changes during a load make one more. */
export function reloadOn(ctx: Context, wanted: (change: Change | null) => boolean,
  load: () => Promise<void>): void {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } catch (error) {
      console.warn("reload", error);
    } finally {
      running = false;
    }
  };
  ctx.onLeave(ctx.store.listen((change) => {
    if (wanted(change)) void run();
  }));
}

/** The tenant's volumes (an admin's: everyone's), kept current by the stream. */
export class VolumeSet {
  readonly byId = new Map<string, Volume>();

  constructor(private readonly client: Client) {}

  async loadAll(): Promise<void> {
    const all: Volume[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.client.listVolumes(cursor);
      all.push(...page.items);
      cursor = page.next ?? undefined;
    } while (cursor);
    this.byId.clear();
    for (const volume of all) this.byId.set(volume.id, volume);
  }

  /** Reads one volume again; a 404 means it is gone. */
  async refresh(id: string): Promise<void> {
    try {
      const volume = await this.client.getVolume(id);
      const known = this.byId.get(id);
      if (!known || known.updated_at <= volume.updated_at) this.byId.set(id, volume);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.byId.delete(id);
      else throw error;
    }
  }

  sorted(): Volume[] {
    return [...this.byId.values()]
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  attachedTo(instanceId: string): [Volume, VolumeAttachment][] {
    const found: [Volume, VolumeAttachment][] = [];
    for (const volume of this.sorted()) {
      for (const attachment of volume.attachments) {
        if (attachment.instance_id === instanceId) found.push([volume, attachment]);
      }
    }
    return found.sort((a, b) => a[1].device.localeCompare(b[1].device));
  }
}

/** Loads `volumes`, draws, then keeps both current until the page is left. */
export async function followVolumes(ctx: Context, volumes: VolumeSet, draw: () => void): Promise<void> {
  await volumes.loadAll();
  draw();
  const pending = new Set<string>();
  let all = false;
  reloadOn(ctx, (change) => {
    if (change === null) all = true;
    else if (change.kind === "volume") pending.add(change.id);
    return change === null || change.kind === "volume" || change.kind === "instance";
  }, async () => {
    const ids = [...pending];
    pending.clear();
    if (all) {
      all = false;
      await volumes.loadAll();
    } else {
      await Promise.all(ids.map((id) => volumes.refresh(id)));
    }
    draw();
  });
}
