package snaploader.agent;

import java.io.IOException;
import java.lang.instrument.Instrumentation;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * snaploader's Java agent: /opt/snaploader/java/snaploader-agent.jar, which the wrapper adds to
 * JAVA_TOOL_OPTIONS (as -javaagent, before the user's own options) when the runtime is a JVM and
 * an archive is configured. It runs before the runtime's main class, once the init program has
 * laid out the tree (SNAPLOADER_MAP set):
 *
 *  - the archive's lib/*.jar and java/lib/*.jar join the system class path (ArchiveJars); a jar
 *    the JVM cannot open fails the init, naming it (SNAPLOADER_ON_ERROR=continue: a warning);
 *  - a shared library built for another architecture, and a java.library.path set without the
 *    tree's library directories, are reported by name (NativeLibraries);
 *  - JavaCPP's org.bytedeco.javacpp.cacheLibraries is set to false, unless the user set it, when
 *    the archive holds JavaCPP natives: JavaCPP resolves each library's real path before it uses
 *    it, a memfd's has none, and it would copy every memory-placed library into its cache in
 *    /tmp (two 37 MB copies for OpenBLAS) instead of loading it where it is;
 *  - under SnapStart, a CRaC resource checks and repairs the tree after a restore (AfterRestore).
 *
 * Native libraries themselves need nothing here: HotSpot builds java.library.path from
 * LD_LIBRARY_PATH at start (the init program put the tree's library directories there), and
 * the preload library redirects dlopen, open and stat of <base path>/... to the tree.
 */
public final class Agent {
  static final String JAVACPP_CACHE_LIBRARIES = "org.bytedeco.javacpp.cacheLibraries";

  private Agent() {}

  static void log(String message) {
    System.err.println("snaploader: " + message);
    System.err.flush();
  }

  /**
   * A setting in the settings grammar (docs/architecture.md): surrounding ASCII whitespace
   * ignored, words compared ASCII case-insensitively (A-Z only, whatever the locale).
   */
  static String settingWord(String value) {
    if (value == null) return "";
    int start = 0;
    int end = value.length();
    while (start < end && isAsciiSpace(value.charAt(start))) start++;
    while (end > start && isAsciiSpace(value.charAt(end - 1))) end--;
    StringBuilder word = new StringBuilder(end - start);
    for (int i = start; i < end; i++) {
      char c = value.charAt(i);
      word.append(c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c);
    }
    return word.toString();
  }

  private static boolean isAsciiSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == 0x0b || c == '\f' || c == '\r';
  }

  /** SNAPLOADER_DEBUG, a diagnostic switch: any value but an off word is on. */
  private static boolean debug() {
    String v = settingWord(System.getenv("SNAPLOADER_DEBUG"));
    return !(v.isEmpty() || v.equals("0") || v.equals("false") || v.equals("no") || v.equals("off"));
  }

  public static void premain(String args, Instrumentation inst) {
    String mapPath = System.getenv("SNAPLOADER_MAP");
    if (mapPath == null || mapPath.isEmpty()) return; // no archive loaded: nothing to do
    MappingFile map;
    try {
      map = MappingFile.read(Path.of(mapPath));
    } catch (IOException e) {
      log("cannot read the mapping file " + mapPath + " (" + e.getMessage() + "): the archive's jars are not on the class path");
      return;
    }
    // The wrapper and the helper have refused any other value than fail or continue already.
    boolean fail = !settingWord(System.getenv("SNAPLOADER_ON_ERROR")).equals("continue");
    List<MappingFile.Record> jars = ArchiveJars.find(map);
    for (MappingFile.Record jar : jars) {
      try {
        ArchiveJars.add(inst, map, jar);
      } catch (ArchiveJars.NotAJarException e) {
        if (fail) {
          log(e.getMessage());
          System.exit(1); // before the runtime starts: Lambda reports Runtime.ExitError with this line
        }
        log("warning: " + e.getMessage() + "; starting without it (SNAPLOADER_ON_ERROR=continue)");
      }
    }
    for (String problem : NativeLibraries.foreignLibraries(map, NativeLibraries.ownMachine())) log("warning: " + problem);
    Set<String> missing = NativeLibraries.missingFromLibraryPath(map, System.getenv("LD_LIBRARY_PATH"), System.getProperty("java.library.path"));
    if (!missing.isEmpty()) {
      log("warning: java.library.path was set without the archive's library directories " + String.join(":", missing)
          + ": System.loadLibrary will not find them there; leave -Djava.library.path out (HotSpot builds it from LD_LIBRARY_PATH,"
          + " which snaploader sets) or append these directories to it");
    }
    boolean javacpp = System.getProperty(JAVACPP_CACHE_LIBRARIES) == null && NativeLibraries.hasJavaCppNatives(map);
    if (javacpp) System.setProperty(JAVACPP_CACHE_LIBRARIES, "false");
    String crac = AfterRestore.register(map);
    if (debug()) {
      log("java agent: " + jars.size() + " archive jars on the class path; after-restore check "
          + (crac == null ? "not registered (no CRaC implementation)" : "registered with " + crac + ".Core")
          + (javacpp ? "; " + JAVACPP_CACHE_LIBRARIES + "=false" : ""));
    }
  }
}
