"""The cluster tier: Ray Serve's local testing mode runs its replica in this process, with one torch
thread and fp32; a real local cluster runs the app in a subprocess."""

from support import use_cpu_torch

use_cpu_torch()
