import sys

from pmip6.cli import main

sys.exit(main())
