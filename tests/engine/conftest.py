"""The engine tier: the tiny models run in this process, with one torch thread and fp32."""

from support import use_cpu_torch

use_cpu_torch()
