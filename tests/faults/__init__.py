"""The fault suite (`make faults`): the whole system through many renewals while faults hit it."""
