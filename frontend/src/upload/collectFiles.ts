// Turns a drop (files, folders, zips) or a file input into a flat list of files.
export interface PickedFile {
  file: File;
  /** Path inside the dropped folder, or just the file name. */
  path: string;
}

// Skip OS clutter that would only produce "not DICOM" errors.
const IGNORED = /(^|\/)(\.DS_Store|Thumbs\.db|desktop\.ini|\._[^/]*)$/i;

export function keep(picked: PickedFile[]): PickedFile[] {
  return picked.filter((p) => !IGNORED.test(p.path));
}

export function fromFileList(list: FileList | File[]): PickedFile[] {
  return keep(
    Array.from(list).map((file) => ({ file, path: file.webkitRelativePath || file.name })),
  );
}

function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries returns at most ~100 entries per call: keep reading until empty.
  return new Promise((resolve, reject) => {
    const all: FileSystemEntry[] = [];
    const readBatch = (): void =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          readBatch();
        }
      }, reject);
    readBatch();
  });
}

async function walkEntry(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
    for (const child of children) await walkEntry(child, `${prefix}${entry.name}/`, out);
  }
}

export async function fromDataTransfer(transfer: DataTransfer): Promise<PickedFile[]> {
  // Entries must be taken synchronously, before the first await, or the browser drops them.
  const entries = Array.from(transfer.items)
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return fromFileList(transfer.files);
  }
  const out: PickedFile[] = [];
  for (const entry of entries) if (entry) await walkEntry(entry, '', out);
  return keep(out);
}
