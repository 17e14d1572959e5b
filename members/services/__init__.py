"""Members services, split by subdomain: :mod:`~members.services.members` (the CRM's upsert and
status changes), :mod:`~members.services.snapshots`, :mod:`~members.services.messages`,
:mod:`~members.services.ladder` (tiers and benefits as staff configure them),
:mod:`~members.services.evaluation` (tier evaluation runs), :mod:`~members.services.simulation`
and :mod:`~members.services.overrides`. Import from the module that holds a function."""
