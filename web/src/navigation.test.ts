import { describe, expect, it, vi } from "vitest";
import { Navigation } from "./navigation";

describe("Navigation", () => {
  it("drops a page still loading when the route changes: it is not current, its listeners go at once", () => {
    const navigation = new Navigation();
    const slow = navigation.begin();
    const fast = navigation.begin(); // the user clicked on before the first page loaded
    expect(slow.current()).toBe(false);
    expect(fast.current()).toBe(true);
    const late = vi.fn();
    slow.onLeave(late);
    expect(late).toHaveBeenCalledTimes(1);
    const kept = vi.fn();
    fast.onLeave(kept);
    expect(kept).not.toHaveBeenCalled();
    navigation.begin();
    expect(kept).toHaveBeenCalledTimes(1);
  });
});
