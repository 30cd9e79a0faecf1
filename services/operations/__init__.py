"""What an operator needs to see and do, one module per job: topics and lag, tail, dead letters,
health, lookups and the read-only web console. `services/cli.py` wires them into `renewals`."""
