"""/var/runtime/bootstrap.py of the sandbox's Python runtime.

What Lambda's managed Python runtime does before handing over to the runtime interface client:
the function's code first on sys.path, then each layer's python directories added with
site.addsitedir (so their .pth files run) only when PYTHONPATH is not set, then awslambdaric
(the real one, from PyPI, beside this file) with the handler from _HANDLER.
"""
import os
import site
import sys


def add_layer_site_dirs():
    if "PYTHONPATH" in os.environ:
        return
    site.addsitedir("/opt/python")
    site.addsitedir("/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2])


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
    add_layer_site_dirs()
    from awslambdaric import __main__ as ric

    ric.main([sys.argv[0], os.environ["_HANDLER"]])


# Guarded, so that multiprocessing's spawn and forkserver children, which run this file again
# as __mp_main__, do not start a second runtime client.
if __name__ == "__main__":
    main()
