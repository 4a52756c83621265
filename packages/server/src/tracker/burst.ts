// Leading-edge coalescing for tracker pushes and reports (decisions.md §6): the first change of a burst goes out
// at once, so a subscriber learns of it no later than the reply that caused it (0.11's Java and Python producers
// declare a topic and publish at once, routed by that push); later changes within `windowMs` are folded into
// one run at the window's end, so a storm of changes costs one push per window.

export class Burst {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = false;

  constructor(
    readonly run: () => void,
    readonly windowMs: number,
  ) {}

  /** Something changed: run now, or once at the end of the current window. */
  trigger(): void {
    if (this.#timer) {
      this.#pending = true;
      return;
    }
    this.run();
    this.#openWindow();
  }

  #openWindow(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#pending) return;
      this.#pending = false;
      this.run();
      this.#openWindow();
    }, this.windowMs);
    this.#timer.unref?.();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = false;
  }
}
