"""The workflow over a workspace: representations, refresh, one state, queues, reports, export, training, jobs."""
