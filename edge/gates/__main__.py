import sys

from edge.gates.runtime import main

sys.exit(main())
