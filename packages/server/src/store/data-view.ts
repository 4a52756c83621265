/**
 * A DataView over a buffer's whole ArrayBuffer, kept for the next call with the same one: the store's writer and
 * readers reuse their buffers (and Node's pooled Buffers share one), so a view is rarely made. Each user keeps a
 * cache of its own, so that the writer's slab and the readers' buffers do not take turns in one.
 */
export class ViewCache {
  #buffer: ArrayBufferLike | undefined;
  #view: DataView | undefined;

  of(buf: Uint8Array): DataView {
    if (buf.buffer !== this.#buffer) {
      this.#buffer = buf.buffer;
      this.#view = new DataView(buf.buffer);
    }
    return this.#view as DataView;
  }
}
