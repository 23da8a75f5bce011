import sys

from fhsdk.cli import main

sys.exit(main())
