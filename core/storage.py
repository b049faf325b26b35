"""Static files storage for production: hashed, compressed names (whitenoise), and
source-map comments left alone.

Django's manifest storage rewrites `sourceMappingURL` comments to hashed names and
fails `collectstatic` when the map is not shipped (vendored Chart.js refers to a
`chart.umd.min.js.map` we do not ship). A source map only serves a browser's developer
tools, so a missing one must never stop a deployment: the comments are not rewritten.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns: tuple) -> tuple:
    kept = []
    for glob, rules in patterns:
        rules = tuple(r for r in rules if "sourceMappingURL" not in (r[0] if isinstance(r, tuple) else r))
        if rules:
            kept.append((glob, rules))
    return tuple(kept)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
