"""The Ray engine (``--engine ray``): the driver's engine, the worker actor, shared limits, merged reports."""
