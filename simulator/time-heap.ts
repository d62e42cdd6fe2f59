// A binary min-heap of ids keyed by a time per id (ties: lower id first). The event merge keeps
// one entry per user, so memory is O(users) no matter how many events flow through it.

export class TimeHeap {
  readonly #ids: Int32Array;
  readonly #times: Float64Array;
  #size = 0;

  /** Ids are 0..capacity-1; `times[id]` is read whenever the heap compares. */
  constructor(capacity: number, times: Float64Array) {
    this.#ids = new Int32Array(capacity);
    this.#times = times;
  }

  get size(): number {
    return this.#size;
  }

  /** The id with the smallest time; -1 when empty. */
  peek(): number {
    return this.#size > 0 ? this.#ids[0]! : -1;
  }

  push(id: number): void {
    if (this.#size >= this.#ids.length) throw new RangeError(`TimeHeap: full (capacity ${this.#ids.length})`);
    this.#ids[this.#size] = id;
    this.#siftUp(this.#size++);
  }

  /** Removes the top id. */
  pop(): void {
    if (this.#size === 0) return;
    this.#size--;
    if (this.#size > 0) {
      this.#ids[0] = this.#ids[this.#size]!;
      this.#siftDown(0);
    }
  }

  /** Call after the top id's time grew (it may only grow: events go forward). */
  topIncreased(): void {
    this.#siftDown(0);
  }

  #less(a: number, b: number): boolean {
    const ta = this.#times[a]!;
    const tb = this.#times[b]!;
    return ta < tb || (ta === tb && a < b);
  }

  #siftUp(position: number): void {
    const ids = this.#ids;
    const id = ids[position]!;
    while (position > 0) {
      const parent = (position - 1) >> 1;
      const parentId = ids[parent]!;
      if (!this.#less(id, parentId)) break;
      ids[position] = parentId;
      position = parent;
    }
    ids[position] = id;
  }

  #siftDown(position: number): void {
    // The hot path of the merge: locals instead of #less, same ordering.
    const ids = this.#ids;
    const times = this.#times;
    const size = this.#size;
    const id = ids[position]!;
    const time = times[id]!;
    for (;;) {
      let child = 2 * position + 1;
      if (child >= size) break;
      let childId = ids[child]!;
      let childTime = times[childId]!;
      if (child + 1 < size) {
        const rightId = ids[child + 1]!;
        const rightTime = times[rightId]!;
        if (rightTime < childTime || (rightTime === childTime && rightId < childId)) {
          child++;
          childId = rightId;
          childTime = rightTime;
        }
      }
      if (time < childTime || (time === childTime && id < childId)) break;
      ids[position] = childId;
      position = child;
    }
    ids[position] = id;
  }
}
