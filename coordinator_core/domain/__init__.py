"""The domain: typed values that money follows and the pure rules over them.

Nothing here touches a database, a clock or a network. Services load rows through repositories,
call these rules, and hand the results back to repositories; JSON appears only at the column
boundary (``to_json`` / ``from_json``).

=================  ==========================================================================
module             rules
=================  ==========================================================================
``statuses``       the status enums of inputs, predictions and checkpoints, and their moves
``policy``         the missing-prediction policy, parsed once into a typed value
``scoring``        score a batch of resolved rounds; penalise FAILED/ABSENT predictions
``windows``        window totals and the one definition of a window score (Σ value / Σ count)
``ranking``        participants, leaderboard entries and the ranking shared by leaderboard and
                   checkpoints
=================  ==========================================================================

Emission (apportionment of shares in frac64) lives in ``coordinator_core.emission``.
"""
