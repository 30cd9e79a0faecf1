"""`make bench`: end-to-end renewals per second through every service, and the raw ceilings."""
