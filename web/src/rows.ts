// A list's rows, kept current without redrawing the whole list on every change: draws at most
// once a frame (a burst of changes, 200 instances booting, makes one draw), and a row is built
// again only when its item changed (the store holds a new object for every change).
import { mount } from "./dom";

export class KeyedRows<T extends { id: string }> {
  private rows = new Map<string, { item: T; row: HTMLElement }>();
  private pending = false;

  constructor(
    private readonly body: HTMLElement,
    private readonly items: () => T[],
    private readonly render: (item: T) => HTMLElement,
    private readonly empty: () => HTMLElement,
    private readonly schedule: (run: () => void) => void = (run) => requestAnimationFrame(run),
  ) {}

  /** Draws now. */
  draw(): void {
    const next = new Map<string, { item: T; row: HTMLElement }>();
    const rows = this.items().map((item) => {
      const known = this.rows.get(item.id);
      const row = known && known.item === item ? known.row : this.render(item);
      next.set(item.id, { item, row });
      return row;
    });
    this.rows = next;
    mount(this.body, ...(rows.length ? rows : [this.empty()]));
  }

  /** Draws at the next frame, once however many changes ask for it before then. */
  request(): void {
    if (this.pending) return;
    this.pending = true;
    this.schedule(() => {
      this.pending = false;
      this.draw();
    });
  }
}
