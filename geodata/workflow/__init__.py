"""Where each issue is handled: the workflow rules, transitions, the service, queries, photos, diaries, notices."""
