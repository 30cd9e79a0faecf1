"""What an operator needs to see and do, one module per job: topics and lag, tail, dead letters,
health, lookups and the read-only web console. `cli/` wires them into `renewals`,
one module per command group."""
