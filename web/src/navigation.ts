// One visit per route change. A page that is still loading when the route changes again is
// dropped: it never shows over the newer page, and what it listens to is removed at once.
export interface Visit {
  /** Whether this is still the visit the URL asks for. */
  current: () => boolean;
  /** Keeps `undo` for when the page is left (at once, if it was left already). */
  onLeave: (undo: () => void) => void;
}

export class Navigation {
  private visits = 0;
  private leave: (() => void)[] = [];

  begin(): Visit {
    for (const undo of this.leave) undo();
    this.leave = [];
    const visit = ++this.visits;
    const current = (): boolean => visit === this.visits;
    return {
      current,
      onLeave: (undo) => {
        if (current()) this.leave.push(undo);
        else undo();
      },
    };
  }
}
