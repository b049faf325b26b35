"""Upload a CSV from the command line, through the same services as the web form:
validate (synchronously), print counts and errors, then store and queue the pushes.

    python manage.py upload_csv --org acme --meter "Main" --to wattics,wattcarbon readings.csv
    python manage.py upload_csv --org acme --meter "Gas" --to bills --sheet "2024" --unit therm bills.xlsx
"""

import csv
import io
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Membership, Organization, Role
from sites.models import Meter
from uploads.models import Target, Upload, UploadStatus
from uploads.parsing import units
from uploads.services.ingest import IngestError, upload_confirm, upload_create

TARGET_NAMES = {
    "wattics": Target.WATTICS,
    "wattcarbon": Target.WATTCARBON_INTERVALS,
    "intervals": Target.WATTCARBON_INTERVALS,
    "bills": Target.WATTCARBON_BILLS,
    **{t.value: t for t in Target},
}
ERRORS_PRINTED = 20


class Command(BaseCommand):
    help = "Validate a CSV of readings or bills, store its valid rows and queue the pushes."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--meter", help="Meter name, id or Wattics stream id; omit if the file has a meter column.")
        parser.add_argument("--to", required=True, help="Comma-separated: wattics, wattcarbon, bills.")
        parser.add_argument("--user", help="Username recorded as the uploader (an operator or owner).")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the pushes until every delivery ends; exit 0 only if delivered."
        )
        parser.add_argument("--json", action="store_true", help="With --wait: print the final state as JSON.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")
        parser.add_argument(
            "--naive-times",
            choices=["local", "utc"],
            help="What times without an offset are: the site's local time or UTC (default: the meter's choice).",
        )
        parser.add_argument("--sheet", default="", help="The sheet of an .xlsx workbook (default: the first).")
        parser.add_argument(
            "--unit",
            default="",
            help="The values' unit when the file has no unit column and is not in the meter's unit "
            "(e.g. Wh, MWh, therm, m3): they are converted.",
        )

    def handle(self, *args, **opts):
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {opts['org']!r}.")
        targets = self._targets(opts["to"])
        meter = self._meter(org, opts["meter"]) if opts["meter"] else None
        user = self._user(org, opts["user"]) if opts["user"] else None
        unit = self._unit(opts["unit"]) if opts["unit"] else ""
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with path.open("rb") as f:
                file = File(f, name=path.name)
                upload = upload_create(
                    organization=org,
                    user=user,
                    file=file,
                    meter=meter,
                    targets=targets,
                    run_now=True,
                    naive_times=opts.get("naive_times"),
                    sheet=opts["sheet"],
                    source_unit=unit,
                )
        except IngestError as exc:
            raise CommandError(str(exc)) from exc
        self._report(upload)
        if upload.status != UploadStatus.VALIDATED:
            reason = upload.error or "no valid rows"
            raise CommandError(f"Upload {upload.pk} is {upload.status}: {reason} Nothing was stored.")
        upload = upload_confirm(upload=upload, user=user, run_now=True)
        if upload.status != UploadStatus.STORED:
            raise CommandError(f"Upload {upload.pk} failed while storing: {upload.error}")
        self.stdout.write(self.style.SUCCESS(f"Stored {upload.rows_stored} rows (upload {upload.pk})."))
        if upload.error:
            self.stderr.write(upload.error)
        if opts["wait"]:
            from uploads.management.follow import follow_upload

            follow_upload(upload=upload, out=self.stdout, err=self.stderr, as_json=opts["json"],
                          timeout=opts["timeout"] or None)  # fmt: skip

    def _targets(self, text: str) -> list[str]:
        names = [n.strip().lower() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in TARGET_NAMES]
        if unknown or not names:
            raise CommandError(f"Unknown target(s) {', '.join(unknown) or '(none)'}; use wattics, wattcarbon, bills.")
        return list(dict.fromkeys(TARGET_NAMES[n] for n in names))

    def _unit(self, name: str) -> str:
        try:
            return units.canonical(name)
        except units.UnitError as exc:
            raise CommandError(str(exc)) from exc

    def _meter(self, org: Organization, key: str) -> Meter:
        meters = Meter.objects.filter(organization=org)
        found = list(meters.filter(pk=int(key))) if key.isdigit() else []
        found = found or list(meters.filter(name=key)) or list(meters.filter(wattics_stream_id=key))
        if len(found) != 1:
            raise CommandError(f"{len(found) or 'No'} meters of {org.slug} match {key!r}; give its id.")
        return found[0]

    def _user(self, org: Organization, username: str):
        user = get_user_model().objects.filter(username=username).first()
        membership = Membership.objects.filter(user=user, organization=org).first() if user else None
        if membership is None or not membership.allows(Role.OPERATOR):
            raise CommandError(f"{username!r} is not an operator or owner of {org.slug}.")
        return user

    def _report(self, upload: Upload) -> None:
        o = upload.options
        self.stdout.write(
            f"Upload {upload.pk}: {upload.get_status_display()}. Rows: {upload.rows_total} read, "
            f"{upload.rows_valid} valid, {upload.rows_invalid} with errors. "
            f"({o.get('delimiter', '?')}-separated, {o.get('encoding', '?')}{', gzip' if o.get('compression') else ''})"
        )
        if upload.error:
            self.stdout.write(upload.error)
        for w in upload.warnings:
            self.stdout.write(f"Warning: {w['message']}")
        if upload.error_report:
            with upload.error_report.open("rb") as f:
                reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline=""))
                next(reader, None)
                for i, (line, column, value, problem) in enumerate(reader):
                    if i >= ERRORS_PRINTED:
                        self.stdout.write(f"… see the full error report of upload {upload.pk}.")
                        break
                    where = f" ({column}={value!r})" if column else ""
                    self.stdout.write(f"Line {line}: {problem}{where}")
