#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "durable_site.settings")
    from django.core.management import execute_from_command_line

    from durable_site.terminal import note_verbose_flag

    note_verbose_flag(sys.argv)  # before the settings configure logging
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
