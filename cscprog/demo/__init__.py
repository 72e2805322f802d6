"""``cscprog demo``: the whole method end to end on the packaged samples, with a Markdown report.

:func:`run_demo` rewrites and annotates raw calls (CSConv-style), synthesizes and judges role-play dialogues
(RoleCS-style), compiles the response generator on that data, evaluates base vs compiled in reference and
generated context, and writes ``report.md`` with the paper's table layout, plots, usage and the manifest. It
runs on whatever the configuration names (the embedded local model by default), through the response cache, so
a second run replays every call. :func:`demo_config` adapts a configuration for it (cache under the output
directory, the small embedded model).

Example:
    ```python
    from pathlib import Path
    from cscprog.config import load_config
    from cscprog.demo import demo_config, run_demo
    from cscprog.lm.runtime import Runtime

    config, notes = demo_config(load_config(), Path("cscprog-demo"))
    runtime = Runtime(config)
    try:
        result = run_demo("cscprog-demo", runtime, notes=notes)
    finally:
        runtime.close()
    print(result.report, result.exit_status)
    ```
"""

from cscprog.demo.pipeline import OUTPUTS, run_demo
from cscprog.demo.plan import DemoPlan, demo_config, provider_snippet
from cscprog.demo.result import DemoResult
from cscprog.demo.stages import DemoStopped

__all__ = ["OUTPUTS", "DemoPlan", "DemoResult", "DemoStopped", "demo_config", "provider_snippet", "run_demo"]
