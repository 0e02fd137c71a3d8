"""The app tier: the app in subprocesses (they get OMP_NUM_THREADS and STUDIO_DTYPE from tests/conftest.py)
and its page and APIs built in this process, which runs the tiny models with one torch thread and fp32."""

from support import use_cpu_torch

use_cpu_torch()
