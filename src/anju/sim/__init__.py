"""The simulator (模拟器): builds a believable community through the real services.

:mod:`anju.sim.community` builds the community (addresses, people, houses, units, vehicles,
devices, forces, incidents); :mod:`anju.sim.identity` makes the valid identifiers it needs;
:mod:`anju.sim.life` lives its days as device events, which :mod:`anju.sim.runner` sends
through :mod:`anju.sim.senders` (HTTP, MQTT); :mod:`anju.sim.cli` is the ``anju sim`` command.
"""
