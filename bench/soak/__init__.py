"""A chaos soak: feedcore's real stack under steady mixed load while a seeded scheduler breaks its
parts, then every feed checked against an oracle of what the API acknowledged.

    python -m bench.soak --minutes 20 [--seed N]       (make soak MINUTES=20)
"""
