"""`bindkit demo`: the paper end to end on the digits world, offline, on a CPU, in minutes (see docs/demo.md).

    from bindkit.demo import run_demo
    result = run_demo(quick=True)          # ~/.cache/bindkit/runs/demo/<timestamp>, and .../latest
    result.report_md, result.model_dir     # the tables; the six encoders (bindkit.load_model)
"""

from bindkit.demo.run import DemoResult, default_run_root, latest_run, run_demo
from bindkit.demo.settings import DEMO_CONFIG, PRESETS, DemoSettings, Phase, demo_config, register_demo_config

__all__ = [
    "DEMO_CONFIG", "PRESETS", "DemoResult", "DemoSettings", "Phase", "default_run_root", "demo_config", "latest_run",
    "register_demo_config", "run_demo",
]  # fmt: skip
