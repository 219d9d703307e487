package snaploader.agent;

import java.io.IOException;
import java.lang.instrument.Instrumentation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.jar.JarFile;
import java.util.regex.Pattern;

/**
 * The archive's jars on the class path, where a deployment package's would be: Lambda's Java
 * runtime loads /var/task/lib/*.jar (and a layer's /opt/java/lib/*.jar), so the archive's
 * lib/*.jar and java/lib/*.jar are appended to the system class loader's search, which the
 * function's own class loader delegates to.
 */
final class ArchiveJars {
  private static final Pattern JAR_ENTRY = Pattern.compile("(java/)?lib/[^/]+\\.jar");

  /** A jar in the archive that the JVM cannot open. */
  static final class NotAJarException extends Exception {
    private static final long serialVersionUID = 1L;

    NotAJarException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private ArchiveJars() {}

  /** The PATH records of the jars to add, in name order (Lambda's own lib/* order is unspecified). */
  static List<MappingFile.Record> find(MappingFile map) {
    List<MappingFile.Record> jars = new ArrayList<>();
    for (MappingFile.Record r : map.records) {
      if (r.kind == MappingFile.PATH && JAR_ENTRY.matcher(map.entryName(r.value)).matches() && Files.isRegularFile(Path.of(r.value))) {
        jars.add(r);
      }
    }
    jars.sort(Comparator.comparing((MappingFile.Record r) -> r.key));
    return jars;
  }

  /** Opens `jar` (which checks its central directory) and appends it to the system class path. */
  static void add(Instrumentation inst, MappingFile map, MappingFile.Record jar) throws NotAJarException {
    JarFile file;
    try {
      file = new JarFile(jar.value);
    } catch (IOException | SecurityException e) {
      throw new NotAJarException("JAR_INVALID: " + jar.key + " (archive entry " + map.entryName(jar.value) + ") is not a jar the JVM can open: " + e.getMessage()
          + ": rebuild it (jar or zip), or leave it out of the archive with SNAPLOADER_EXCLUDE", e);
    }
    inst.appendToSystemClassLoaderSearch(file);
  }
}
