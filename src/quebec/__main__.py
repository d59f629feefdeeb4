import sys

from quebec.cli.main import main

sys.exit(main())
