"""The gate runtime: the appliance's device process (``wicket-edge gates``).

One thread owns each device (``devices.DeviceWorker``), one thread runs each lane
(``lane.LaneWorker``: scans in, decisions through the engine, the turnstile out), and the
supervisor (``runtime.GateRuntime``) follows the database: devices and lanes as configured,
commands from the web pages, device health back, and systemd's watchdog.
"""
