// The ack journal of a group (group.ts): small fixed entries, appended in batches, read whole at open (it is
// compacted long before it grows large), rewritten atomically when compacted.
import fs from 'node:fs';
import { AppendFile } from './append-file.js';
import type { FileCache } from './file-cache.js';
import { writeFileAtomic } from './fs-util.js';

export class Journal extends AppendFile {
  /** Open (creating) the journal and return its current contents. */
  static async open(path: string, files: FileCache): Promise<{ journal: Journal; contents: Buffer }> {
    let contents: Buffer;
    try {
      contents = await fs.promises.readFile(path);
    } catch {
      contents = Buffer.alloc(0);
    }
    const file = await files.open(path, 'write');
    return { journal: new Journal(path, file, contents.length), contents };
  }

  /** Replace the whole journal with `contents` (compaction): temp file, fsync, rename. Buffered entries go after. */
  rewrite(contents: Buffer): Promise<void> {
    const pending = this.takePending();
    return this.run(async () => {
      if (this.closed) return;
      const buf = pending.length > 0 ? Buffer.concat([contents, ...pending.map((p) => p.buf)]) : contents;
      await writeFileAtomic(this.path, buf, true);
      await this.swapFile(buf.length);
    });
  }
}
