package snaploader.agent;

import java.io.IOException;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * SnapStart: after a restore, every mapped file must still resolve. A memfd link is re-pointed
 * at /proc/<current pid>/fd/<N> if it moved (the memfds themselves are part of the snapshot); a
 * mapped file that is gone cannot be recovered and fails the restore with a message naming it,
 * instead of a function that fails at its first use. The same check as the Python hook
 * (layer/python/snaploader_site.py), with the same lines in the log.
 *
 * Registered as a CRaC resource on the global context before the function's own code runs, so
 * its afterRestore runs first (CRaC calls afterRestore in registration order). The Lambda Java
 * runtime's own context is tried first: the function's org.crac resources reach it too, through
 * -Dorg.crac.Core.Compat=com.amazonaws.services.lambda.crac, which the runtime passes.
 */
final class AfterRestore {
  private static final String[] CRAC_PACKAGES = {"com.amazonaws.services.lambda.crac", "org.crac", "jdk.crac"};
  /** Contexts may hold resources weakly: this keeps ours. */
  private static Object registered;

  /** A mapped file that no longer resolves after a restore. */
  static final class RestoreError extends Exception {
    private static final long serialVersionUID = 1L;

    RestoreError(String message) {
      super(message);
    }
  }

  private AfterRestore() {}

  /** Registers the check with the first CRaC implementation found; returns its package, or null. */
  static String register(MappingFile map) {
    for (String pkg : CRAC_PACKAGES) {
      try {
        ClassLoader loader = ClassLoader.getSystemClassLoader();
        Class<?> core = Class.forName(pkg + ".Core", true, loader);
        Class<?> resource = Class.forName(pkg + ".Resource", true, loader);
        Class<?> context = Class.forName(pkg + ".Context", true, loader);
        Object global = core.getMethod("getGlobalContext").invoke(null);
        Object proxy = Proxy.newProxyInstance(loader, new Class<?>[] {resource}, handler(map));
        context.getMethod("register", resource).invoke(global, proxy);
        registered = proxy;
        return pkg;
      } catch (ReflectiveOperationException | LinkageError e) {
        // not this implementation: try the next
      }
    }
    return null;
  }

  static boolean isRegistered() {
    return registered != null;
  }

  private static InvocationHandler handler(MappingFile map) {
    return new InvocationHandler() {
      @Override
      public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
        switch (method.getName()) {
          case "afterRestore":
            verifyAndRepair(map);
            return null;
          case "beforeCheckpoint":
            return null;
          case "hashCode":
            return System.identityHashCode(proxy);
          case "equals":
            return proxy == args[0];
          case "toString":
            return "snaploader after-restore check of " + map.file;
          default:
            throw new UnsupportedOperationException(method.toString());
        }
      }
    };
  }

  /** Checks every mapped file and repairs moved memfd links; logs one line; returns {checked, repaired}. */
  static int[] verifyAndRepair(MappingFile map) throws RestoreError, IOException {
    long pid = ProcessHandle.current().pid();
    int repaired = 0;
    for (MappingFile.Record r : map.records) {
      if (r.kind != MappingFile.MEMFD) continue;
      Path link = Path.of(r.key);
      String want = "/proc/" + pid + "/fd/" + r.value;
      String current;
      try {
        current = Files.readSymbolicLink(link).toString();
      } catch (IOException e) {
        current = null;
      }
      if (!want.equals(current) && isMemfd(r.value)) {
        Path tmp = Path.of(r.key + ".snaploader-repair");
        Files.deleteIfExists(tmp);
        Files.createSymbolicLink(tmp, Path.of(want));
        Files.move(tmp, link, StandardCopyOption.ATOMIC_MOVE);
        repaired++;
      }
    }
    int checked = 0;
    List<String> missing = new ArrayList<>();
    for (MappingFile.Record r : map.records) {
      if (r.kind != MappingFile.PATH) continue;
      checked++;
      if (!Files.exists(Path.of(r.value))) missing.add(r.value);
    }
    if (!missing.isEmpty()) {
      String message = String.format("after restore: %d of %d mapped files do not resolve (first: %s), %d links repaired: "
          + "the archive's tree in %s changed while the function was snapshotted and cannot be recovered; "
          + "publish a new version to take a new snapshot", missing.size(), checked, missing.get(0), repaired, map.tree);
      Agent.log(message);
      throw new RestoreError("snaploader: " + message);
    }
    Agent.log(String.format("after restore: %d mapped files resolve, %d links repaired", checked, repaired));
    return new int[] {checked, repaired};
  }

  private static boolean isMemfd(String fd) {
    try {
      return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString().startsWith("/memfd:");
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }
}
