import { describe, expect, it } from "vitest";
import { h } from "./dom";
import { KeyedRows } from "./rows";

interface Item {
  id: string;
  status: string;
}

function setUp(items: Item[]) {
  const body = h("tbody");
  const frames: (() => void)[] = [];
  let built = 0;
  const rows = new KeyedRows<Item>(
    body,
    () => items,
    (item) => {
      built += 1;
      return h("tr", { "data-id": item.id }, item.status);
    },
    () => h("tr", {}, "None yet."),
    (run) => frames.push(run),
  );
  return { body, frames, rows, built: () => built };
}

describe("KeyedRows", () => {
  it("draws a burst of changes once, at the next frame", () => {
    const items: Item[] = [{ id: "a", status: "BUILD" }];
    const { body, frames, rows, built } = setUp(items);
    rows.draw();
    items[0] = { id: "a", status: "RUNNING" };
    rows.request();
    rows.request();
    expect(frames).toHaveLength(1);
    expect(body.textContent).toBe("BUILD");
    frames[0]();
    expect(body.textContent).toBe("RUNNING");
    expect(built()).toBe(2);
  });

  it("builds again only the rows whose item changed, in the items' order", () => {
    const items: Item[] = [{ id: "a", status: "BUILD" }, { id: "b", status: "BUILD" }];
    const { body, rows, built } = setUp(items);
    rows.draw();
    const first = body.querySelector('[data-id="a"]');
    items[1] = { id: "b", status: "RUNNING" };
    items.reverse();
    rows.draw();
    expect(built()).toBe(3);
    expect(body.querySelector('[data-id="a"]')).toBe(first);
    expect([...body.children].map((r) => r.textContent)).toEqual(["RUNNING", "BUILD"]);
  });

  it("shows the empty row when there are no items, and forgets rows that went", () => {
    const items: Item[] = [{ id: "a", status: "BUILD" }];
    const { body, rows, built } = setUp(items);
    rows.draw();
    items.pop();
    rows.draw();
    expect(body.textContent).toBe("None yet.");
    items.push({ id: "a", status: "BUILD" });
    rows.draw();
    expect(built()).toBe(2);
  });
});
