"""What the tests share (no test lives here; import each module by name).

- :mod:`.nodes`: real ``lightcone core`` / ``lightcone edge`` processes on ephemeral ports
  (``start_core``, ``start_edge``), the tokens and the small corpus they use;
- :mod:`.waiting`: wait for a condition with a deadline, never a bare sleep;
- :mod:`.clients`, :mod:`.cursor_client`, :mod:`.raw_client`: websocket clients (one request
  and its answer, a cursor member, a client that stops reading for real);
- :mod:`.proxy_thread`: a latency proxy on its own thread, to cut and heal links;
- :mod:`.browser`, :mod:`.system`: headless Chromium and other system programs, skipped with
  the package to install when missing.
"""
