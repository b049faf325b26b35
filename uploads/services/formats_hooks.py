"""The few points where validation (uploads.services.ingest) asks the formats services:
saved column mappings, and meters of other systems still to match."""

from uploads.models import Upload, UploadStatus
from uploads.parsing import portfolio
from uploads.parsing.columns import detect

# The mapping page lists at most this many ids to match.
MAX_UNMATCHED = 50


def apply_saved_mapping(upload: Upload, header: list[str]) -> bool:
    """Use the organization's mapping for exactly this header, once; True if there was a new one to try."""
    from uploads.services.formats import saved_mapping_exact

    if not header:
        return False
    saved = saved_mapping_exact(organization=upload.organization, header=header)
    if not saved or saved == upload.column_mapping:
        return False
    upload.column_mapping = saved
    return True


def suggested_mapping(upload: Upload, header: list[str]) -> dict[str, str]:
    """What the mapping page starts from: detected roles, completed by a close saved mapping."""
    from uploads.services.formats import saved_mapping_suggestion

    found = portfolio.adjust(header, detect(header))
    for name, role in saved_mapping_suggestion(organization=upload.organization, header=header).items():
        if role not in found.values() and name not in found:
            found[name] = role
    return found


def remember_mapping(upload: Upload) -> None:
    from uploads.services.formats import saved_mapping_save

    saved_mapping_save(
        organization=upload.organization, header=upload.options.get("header", []), mapping=upload.column_mapping
    )


def unmatched_meters(upload: Upload, parsed, options: dict) -> dict:
    """Fields for NEEDS_MAPPING when the file names meters of another system not matched yet; else {}."""
    lookup = parsed.reader.resolve_meter
    if upload.meter_id or not parsed.foreign_meter_ids or not hasattr(lookup, "unresolved"):
        return {}
    keys = lookup.unresolved()
    if not keys:
        return {}
    what = "Green Button series" if options.get("format") == "greenbutton" else "Portfolio Manager meters"
    n = len(keys)
    return {
        "status": UploadStatus.NEEDS_MAPPING,
        "error": f"{n} {what} of this file {'is' if n == 1 else 'are'} not matched to a meter yet: "
        "choose the meter for each (the choice is remembered for the next file).",
        "options": options | {"meter_keys": keys[:MAX_UNMATCHED]},
        "column_mapping": parsed.mapping,
    }
