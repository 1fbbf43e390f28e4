"""Components every page shares: the shell (URL, language switch, live poll, body), the header with
its live / outage note, and the weekly-notice outbox. Their ids are ``app-…`` / ``hdr-…`` (``ids``)."""
