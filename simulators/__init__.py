"""Local, stateful simulators of the two vendor APIs the portal pushes to.

Stdlib only, and nothing from the portal: a bug copied into both sides would hide itself.
Run one with ``python -m simulators wattcarbon|wattics --port N`` (see docs/simulators.md);
tests start them with :class:`simulators.testing.SimulatorProcess`.
"""

# Demo accounts every simulator starts with (documented in docs/simulators.md).
WATTCARBON_DEMO_EMAIL = "demo@example.com"
WATTCARBON_DEMO_API_KEY = "demo-api-key"

WATTICS_DEMO_USERNAME = "demo"
WATTICS_DEMO_PASSWORD = "demo-password"
# The "three test data points" of Wattics' API startup package: electricity, gas, environment.
WATTICS_DEMO_STREAMS = ("demo-elec-1", "demo-gas-1", "demo-env-1")

KINDS = ("wattcarbon", "wattics")
