/**
 * What the init program reads the archive through: ranged reads of one version of one object.
 * The S3 source (s3/source.ts) is the one the layer uses; tests pass sources over bytes in memory.
 */
export interface ArchiveSource {
  /** s3://bucket/key, for messages. */
  readonly url: string;
  readonly size: number;
  /** Bytes [start, end) in full. */
  read(start: number, end: number): Promise<Buffer>;
  /**
   * Bytes [start, end) of one version of the object, in order, as they arrive. Interrupted
   * bodies are resumed behind the scenes; it fails with a SourceError when they cannot be.
   */
  stream(start: number, end: number): Promise<AsyncIterable<Buffer>>;
}
