import { readFile } from 'node:fs/promises';

/** The last `lines` lines of a text file ('' when it cannot be read). */
export async function tailFile(path: string, lines = 20): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return '';
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
