package snaploader.agent;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** snaploader's mapping file (SNAPLOADER_MAP), read as a whole: docs/architecture.md, "The mapping file". */
final class MappingFile {
  static final int PATH = 1;
  static final int MEMFD = 3;
  private static final byte[] MAGIC = "SNAPMAP\u0001".getBytes(StandardCharsets.ISO_8859_1);

  /** One record; paths are the bytes of the file, decoded as UTF-8 (Lambda's LANG is en_US.UTF-8). */
  static final class Record {
    final int kind;
    final String key;
    final String value;

    Record(int kind, String key, String value) {
      this.kind = kind;
      this.key = key;
      this.value = value;
    }
  }

  final Path file;
  /** The tree the init program laid out: the mapping file is <tree>/.snaploader/map. */
  final Path tree;
  final List<Record> records;

  private MappingFile(Path file, List<Record> records) {
    this.file = file;
    this.tree = file.toAbsolutePath().getParent().getParent();
    this.records = Collections.unmodifiableList(records);
  }

  /** Reads and checks `file`; a file that breaks any rule of the format is a MalformedMapException. */
  static MappingFile read(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() < 16 || !Arrays.equals(Arrays.copyOf(b.array(), 8), MAGIC)) {
      throw new MalformedMapException(file + " is not a snaploader mapping file");
    }
    long count = Integer.toUnsignedLong(b.getInt(8));
    List<Record> records = new ArrayList<>();
    int at = 16;
    for (long i = 0; i < count; i++) {
      if (at + 12 > b.limit()) throw new MalformedMapException(file + " is truncated in record " + i);
      int kind = b.get(at) & 0xff;
      long keyLen = Integer.toUnsignedLong(b.getInt(at + 4));
      long valueLen = Integer.toUnsignedLong(b.getInt(at + 8));
      long keyAt = at + 12L;
      long valueAt = keyAt + keyLen + 1;
      long end = valueAt + valueLen + 1;
      if (end > b.limit() || b.get((int) valueAt - 1) != 0 || b.get((int) end - 1) != 0) {
        throw new MalformedMapException(file + ": record " + i + " is malformed");
      }
      records.add(new Record(kind, text(b.array(), (int) keyAt, (int) keyLen), text(b.array(), (int) valueAt, (int) valueLen)));
      at = (int) end;
    }
    if (at != b.limit()) throw new MalformedMapException(file + " has " + (b.limit() - at) + " trailing bytes");
    return new MappingFile(file, records);
  }

  private static String text(byte[] bytes, int offset, int length) {
    return new String(bytes, offset, length, StandardCharsets.UTF_8);
  }

  /** The archive entry name of a tree path ("lib/x.jar" for <tree>/lib/x.jar). */
  String entryName(String treePath) {
    Path p = Path.of(treePath);
    return p.startsWith(tree) ? tree.relativize(p).toString() : treePath;
  }

  static final class MalformedMapException extends IOException {
    private static final long serialVersionUID = 1L;

    MalformedMapException(String message) {
      super(message);
    }
  }
}
