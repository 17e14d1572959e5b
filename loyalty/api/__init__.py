"""The HTTP layer every app shares, and the one way its views are written.

- **One view per operation**, named ``<Entity><Operation>Api`` (``AdjustmentApproveApi``). DRF
  routes a path to one class, so a path with two operations (a list and its ``POST``) keeps
  them as two methods of one ``<Entity>ListCreateApi``.
- **Nested serializers**: ``InputSerializer`` is the body of the writing method and
  ``OutputSerializer`` what the view answers. A shape several views answer with lives in the
  app's ``api/serializers.py`` and the view names it (``OutputSerializer =
  AdjustmentOutputSerializer``). Decorate each view with
  :func:`loyalty.api.schema.nested_components` so the schema names them after the view.
- **No query in a view**: it parses, resolves what the path or body names (``member_get``),
  calls one service or selector and serializes. Lists are ``generics.ListAPIView`` over one
  selector, filtered by the app's ``FilterSet``.
- **Shared pieces** come from here: :mod:`loyalty.api.serializers` (``StrictSerializer``,
  ``MoneyField``, ``not_in_future``), :mod:`loyalty.api.batch`, :mod:`loyalty.api.idempotency`,
  :mod:`loyalty.api.permissions`, :mod:`loyalty.api.pagination`.
- **Adding to another app's view** is a registration, never a subclass: an app adds its
  fields to ``/me/`` and to the staff member detail through ``members.api.sections`` from its
  ``AppConfig.ready()`` (see ``points.api.sections``).
"""
