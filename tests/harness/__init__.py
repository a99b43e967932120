"""What the tests are built from: helpers, child-process programs and fixtures' machinery.

- ``helpers``: small functions and classes many tests use (echoes, waits,
  descriptor and counter checks).
- ``quiet``: the watch on the namespace's exit for packets that would leave
  the machine.
- ``node_process``, ``node_runner``, ``send_and_exit``: programs the tests
  run as processes of their own.
- ``multihost``, ``multihost_wire``: network namespaces and the wire between
  them, for the fault tests.
- ``tailscaled``, ``headscale``, ``gotools``: real Tailscale components,
  built from pinned versions.
- ``http_helpers``, ``udp_helpers``: what the HTTP and UDP tests share.
- ``soak``: the opt-in soak (``./dev soak``).
"""
