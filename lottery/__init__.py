"""Gift-lottery domain: members, gifts, joins, the draw. Knows nothing of HTTP or Tornado."""
