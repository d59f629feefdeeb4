"""The store (L2): every state transition and every SQL statement lives here.

Each transition is a function `fn(tx, *, ...)` run by `Database.transact` in one
transaction. Modules are named for the source state of their transitions.
"""

from quebec.store.database import Database, Tx

__all__ = ["Database", "Tx"]
