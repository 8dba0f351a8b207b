"""Background work: the scheduler, the refresh sweep, the retry-queue worker, event processing."""
