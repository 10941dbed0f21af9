// What the pages show, kept current by the live stream.
import type { Change, Instance, InstanceEvent } from "./api";

type Listener = (change: Change | null) => void;

export class Store {
  readonly instances = new Map<string, Instance>();
  private readonly listeners = new Set<Listener>();

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  replace(instances: Instance[]): void {
    this.instances.clear();
    for (const instance of instances) this.instances.set(instance.id, instance);
    this.notify(null);
  }

  apply(change: Change): void {
    if (change.instance) {
      const known = this.instances.get(change.id);
      // Changes arrive in fold order; never let an older view replace a newer one.
      if (!known || known.updated_at <= change.instance.updated_at) {
        this.instances.set(change.id, change.instance);
      }
    }
    this.notify(change);
  }

  sorted(): Instance[] {
    return [...this.instances.values()]
      .filter((i) => i.status !== "DELETED")
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  private notify(change: Change | null): void {
    for (const listener of this.listeners) listener(change);
  }
}

export function timelineEntry(change: Change, id: string): InstanceEvent | null {
  return change.id === id && change.entry ? change.entry : null;
}
