"""gunicorn entry point for Keystone 30.

Keystone hands sys.argv to oslo.config when the application is built, and oslo.config
rejects gunicorn's own flags. Trimming sys.argv before the import avoids that; Keystone reads
its configuration from OS_KEYSTONE_CONFIG_FILES instead.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
