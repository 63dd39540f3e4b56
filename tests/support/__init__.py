"""What the unit and the integration tests share: the world of in-memory ports, the state machine."""
