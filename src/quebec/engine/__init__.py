"""The runtime (L4): worker, dispatcher, maintenance, completer, supervisor."""
