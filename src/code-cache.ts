/**
 * What the entry (entry.ts) did with the V8 code cache, handed to the program it runs: the
 * entry sets it before the program starts, the program reports it in its debug log.
 */
export const CODE_CACHE_STATUS = Symbol.for('snaploader.codeCache');

export interface CodeCacheStatus {
  /**
   * 'used': V8 took the cache; 'rejected': V8 refused it (another V8 or other V8 flags);
   * 'damaged': its checksum does not match (never given to V8); 'none': no cache for this node.
   */
  state: 'used' | 'rejected' | 'damaged' | 'none';
  path: string;
}

/** The debug line; null when the program was started without the entry (its tests). */
export function describeCodeCache(): string | null {
  const s = (globalThis as Record<symbol, unknown>)[CODE_CACHE_STATUS] as CodeCacheStatus | undefined;
  if (!s) return null;
  switch (s.state) {
    case 'used': return `code cache: compiled from ${s.path}`;
    case 'damaged': return `code cache: ${s.path} is damaged (its checksum does not match): compiled from source; re-attach the layer zip as built`;
    case 'rejected': return `code cache: V8 rejected ${s.path} (another V8 build or other V8 flags): compiled from source`;
    case 'none': return `code cache: none for node ${process.version} (${s.path}): compiled from source`;
  }
}
