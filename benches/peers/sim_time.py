"""Run a Python ONC client against `onc-pipe simulate` at the simulator's time scale.

Imported first by the two peer drivers (python_tool.py, onc_client.py), before `onc` or
`onc_hydrophone_data`. `install(base_url, time_scale)` does three things and nothing else:

1. Scales every client wait. `time.sleep(s)` becomes a sleep of `s * time_scale`. It is
   replaced before `onc` is imported because onc 2.6.0 binds `from time import sleep` at import
   (onc.modules._OncDelivery: run polls and HEAD counting; onc.modules._DataProductFile: the
   202 retry loop of a download); onc-hydrophone-data calls `time.sleep` (its stagger between
   submissions, its poll interval between passes, its status polls). The simulator runs ONC's
   model `time_scale` times faster, so a client that slept its real-time intervals would poll
   `1 / time_scale` times less often than against ONC. HTTP timeouts are not scaled: they are
   failure bounds, not waits.
2. Reads ONC's processing estimate in simulated seconds. The simulator states
   `estimatedProcessingTime` in real seconds (already scaled, so clients that poll by it poll
   at the simulated pace); onc 2.6.0 derives its poll period from it
   (`_OncDelivery._estimatePollPeriod`: 2 % of the estimate, 1 s to 10 s) and that period is
   then slept through the scaled `time.sleep`, which would scale it twice. The wrapper hands the
   client the estimate divided by `time_scale`, stated as ONC states it (`N s` below 2 min,
   `N min` below 2 hours, else `N hour`).
3. Points every `onc.ONC` client at the simulator: onc 2.6.0 has no base-URL argument; its
   constructor sets `baseUrl` from `production`, so the wrapper sets `baseUrl` (trailing slash
   required) after the original constructor. onc-hydrophone-data makes several clients (one per
   download attempt), hence the class-level patch.

`stats()` returns what the waits added up to (real seconds slept, number of sleeps).
"""

import threading
import time

_real_sleep = time.sleep
_lock = threading.Lock()
_slept = {"seconds": 0.0, "count": 0}
_scale = 1.0


def _scaled_sleep(seconds):
    real = max(0.0, float(seconds)) * _scale
    with _lock:
        _slept["seconds"] += real
        _slept["count"] += 1
    _real_sleep(real)


def install(base_url, time_scale):
    global _scale
    _scale = float(time_scale)
    time.sleep = _scaled_sleep

    import onc.modules._OncDelivery as delivery  # noqa: PLC0415 - after the sleep patch
    from onc import onc as onc_module  # noqa: PLC0415

    original_init = onc_module.ONC.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.baseUrl = base_url

    onc_module.ONC.__init__ = init

    original_estimate = delivery._OncDelivery._estimatePollPeriod
    units = {"s": 1, "min": 60, "hour": 3600}

    def estimate(self, response):
        text = response.get("estimatedProcessingTime") if isinstance(response, dict) else None
        parts = text.split(" ") if isinstance(text, str) else []
        if len(parts) == 2 and parts[1] in units and parts[0].isdigit():
            simulated = int(parts[0]) * units[parts[1]] / _scale
            response = {**response, "estimatedProcessingTime": _onc_duration(simulated)}
        return original_estimate(self, response)

    delivery._OncDelivery._estimatePollPeriod = estimate


def _onc_duration(seconds):
    """A duration as ONC states an estimate: whole seconds below 2 min, minutes below 2 hours."""
    whole = max(1, int(-(-seconds // 1)))
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{-(-whole // 60)} min"
    return f"{-(-whole // 3600)} hour"


def stats():
    with _lock:
        return dict(_slept)
