"""The HTTP API through Litestar's test client on the embedded app: every route, every error class.

Every request goes through :meth:`Api.request`, which fails the test on any 5xx. Tests that change
state get an app of their own; the rejection tests share one seeded app and check, after every
rejected request, that the seeded world is exactly as it was.
"""
