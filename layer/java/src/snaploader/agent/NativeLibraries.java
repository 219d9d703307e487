package snaploader.agent;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What can be checked of the archive's native libraries before the function loads one: that each
 * is built for this machine (a library for the other architecture fails in System.load with a
 * message that names only the tree path), and that java.library.path, which HotSpot reads once
 * at start from LD_LIBRARY_PATH, still holds the tree's library directories.
 */
final class NativeLibraries {
  private static final Pattern SHARED_LIBRARY = Pattern.compile(".*\\.so(\\.[0-9]+)*");
  private static final int EM_X86_64 = 62;
  private static final int EM_AARCH64 = 183;

  private NativeLibraries() {}

  static String machineName(int machine) {
    switch (machine) {
      case EM_X86_64: return "x86_64";
      case EM_AARCH64: return "arm64 (aarch64)";
      default: return "ELF machine " + machine;
    }
  }

  /** This JVM's ELF machine, or -1 when it is neither of Lambda's two. */
  static int ownMachine() {
    String arch = System.getProperty("os.arch", "");
    if (arch.equals("amd64") || arch.equals("x86_64")) return EM_X86_64;
    if (arch.equals("aarch64") || arch.equals("arm64")) return EM_AARCH64;
    return -1;
  }

  /** One line per shared library in the archive built for another machine than `machine`. */
  static List<String> foreignLibraries(MappingFile map, int machine) {
    List<String> problems = new ArrayList<>();
    if (machine < 0) return problems;
    for (MappingFile.Record r : map.records) {
      if (r.kind != MappingFile.PATH || !SHARED_LIBRARY.matcher(Path.of(r.value).getFileName().toString()).matches()) continue;
      int found = elfMachine(Path.of(r.value));
      if (found >= 0 && found != machine) {
        problems.add(r.key + " (archive entry " + map.entryName(r.value) + ") is a library for " + machineName(found) + ", not for this "
            + machineName(machine) + " function: loading it will fail; put the " + machineName(machine) + " build in the archive");
      }
    }
    return problems;
  }

  /** e_machine of an ELF file, or -1 for anything else (a linker script, a symlink to one, a short file). */
  static int elfMachine(Path file) {
    if (!Files.isRegularFile(file)) return -1;
    byte[] h = new byte[20];
    try (InputStream in = Files.newInputStream(file)) {
      if (in.readNBytes(h, 0, h.length) < h.length) return -1;
    } catch (IOException e) {
      return -1;
    }
    if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') return -1;
    boolean little = h[5] == 1;
    return little ? (h[18] & 0xff) | (h[19] & 0xff) << 8 : (h[19] & 0xff) | (h[18] & 0xff) << 8;
  }

  /** Whether the archive holds JavaCPP natives (its cache's layout: <jar>/org/bytedeco/<module>/<platform>/). */
  static boolean hasJavaCppNatives(MappingFile map) {
    for (MappingFile.Record r : map.records) {
      String entry = map.entryName(r.value);
      if (r.kind == MappingFile.PATH && (entry.startsWith("org/bytedeco/") || entry.contains("/org/bytedeco/"))) return true;
    }
    return false;
  }

  /**
   * The tree's library directories (in LD_LIBRARY_PATH, where the init program put them) that
   * java.library.path lacks: empty unless the user set -Djava.library.path themselves.
   */
  static Set<String> missingFromLibraryPath(MappingFile map, String ldLibraryPath, String javaLibraryPath) {
    Set<String> have = new LinkedHashSet<>(List.of((javaLibraryPath == null ? "" : javaLibraryPath).split(":")));
    Set<String> missing = new LinkedHashSet<>();
    String prefix = map.tree.toString() + "/";
    for (String d : (ldLibraryPath == null ? "" : ldLibraryPath).split(":")) {
      if ((d + "/").startsWith(prefix) && !have.contains(d)) missing.add(d);
    }
    return missing;
  }
}
