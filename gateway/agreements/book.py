"""Enforcement: what a node's agreements allow out, let in, and keep for how long.

Pure: :class:`AgreementBook` takes records and times and returns records or decisions.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterable, Mapping

from gateway.agreements.fields import (
    _carries,
    _delete_at,
)
from gateway.agreements.model import (
    Agreement,
    AgreementFileInvalid,
    AgreementProblem,
    AgreementRefused,
    FieldAction,
    RecordTerms,
    RefusalReason,
    beijing_today,
)
from gateway.errors import RecordInvalid
from gateway.records import (
    Feedback,
    OriginalType,
    Record,
    RecordType,
    parse_record,
)


class AgreementBook:
    """Every agreement a node knows, in force or not (expired ones still set retention)."""

    def __init__(self, agreements: Iterable[Agreement]) -> None:
        by_id: dict[str, Agreement] = {}
        problems: list[AgreementProblem] = []
        for agreement in agreements:
            first = by_id.get(agreement.id)
            if first is not None:
                problems.append(
                    AgreementProblem(
                        agreement.source,
                        "id",
                        "id.duplicate",
                        f"agreement id {agreement.id!r} is already used by {first.source}",
                    )
                )
                continue
            by_id[agreement.id] = agreement
        if problems:
            raise AgreementFileInvalid(problems)
        self.agreements: Mapping[str, Agreement] = types.MappingProxyType(by_id)

    def __len__(self) -> int:
        return len(self.agreements)

    def get(self, agreement_id: str) -> Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_UNKNOWN,
                f"agreement {agreement_id!r} is not known to this node",
                agreement_id=agreement_id,
            )
        return agreement

    def terms_for(
        self, agreement_id: str, sender: str, receiver: str, record_type: RecordType
    ) -> RecordTerms | None:
        """The terms (retention, purpose) an exchange was made under, in force or not."""
        agreement = self.agreements.get(agreement_id)
        return None if agreement is None else agreement.terms(sender, receiver, record_type)

    def _admit(
        self,
        *,
        agreement_id: str,
        sender: str,
        receiver: str,
        record_type: RecordType,
        record: Record,
        now: dt.datetime,
        suite: str,
    ) -> tuple[Agreement, RecordTerms]:
        agreement = self.get(agreement_id)

        def refuse(reason: RefusalReason, message: str) -> AgreementRefused:
            return AgreementRefused(reason, message, agreement_id=agreement_id)

        if not agreement.in_force(now):
            raise refuse(
                RefusalReason.AGREEMENT_NOT_IN_FORCE,
                f"agreement {agreement_id} is in force {agreement.period()}, "
                f"not on {beijing_today(now).isoformat()} (Beijing)",
            )
        direction = agreement.directions.get((sender, receiver))
        if direction is None:
            outsiders = [b for b in (sender, receiver) if b not in agreement.parties]
            if outsiders:
                detail = f"bureau {', '.join(outsiders)} is not a party"
            else:
                detail = f"it allows nothing from {sender} to {receiver}"
            raise refuse(
                RefusalReason.AGREEMENT_PARTY_MISMATCH,
                f"agreement {agreement_id} does not cover {sender} → {receiver}: {detail} "
                f"(parties {', '.join(agreement.parties)})",
            )
        if agreement.signature_suite is not None and suite != agreement.signature_suite:
            raise refuse(
                RefusalReason.AGREEMENT_SUITE_REQUIRED,
                f"agreement {agreement_id} requires signature suite "
                f"{agreement.signature_suite}, not {suite}",
            )
        if record.record_type is not record_type:
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"record type {record_type.value} named, but the record is a "
                f"{record.record_type.value}",
            )
        terms = direction.records.get(record_type)
        if terms is None:
            allowed = ", ".join(rt.value for rt in direction.records) or "nothing"
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"agreement {agreement_id} does not allow {record_type.value} from {sender} "
                f"to {receiver} (allowed: {allowed})",
            )
        if isinstance(record, Feedback) and record.original_type not in terms.answers:
            answered = ", ".join(sorted(t.value for t in terms.answers))
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"agreement {agreement_id} allows feedback from {sender} to {receiver} only "
                f"on {answered}, not on {record.original_type.value}",
            )
        return agreement, terms

    def for_outbound(
        self,
        agreement_id: str,
        sender: str,
        receiver: str,
        record: Record,
        *,
        now: dt.datetime,
        suite: str,
    ) -> Record:
        """The record as it may be sent: ``drop`` fields removed, or :class:`AgreementRefused`.

        Returns ``record`` itself when nothing is dropped, else a new validated record.
        ``suite`` is the signature suite the sender will sign with.
        """
        record_type = record.record_type
        _, terms = self._admit(
            agreement_id=agreement_id,
            sender=sender,
            receiver=receiver,
            record_type=record_type,
            record=record,
            now=now,
            suite=suite,
        )
        refused = tuple(p for p in terms.paths(FieldAction.REFUSE) if _carries(record, p))
        if refused:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} refuses {record_type.value} records from {sender} "
                f"to {receiver} that carry {', '.join(refused)}: remove the value(s) or send "
                "under another agreement",
                agreement_id=agreement_id,
                fields=refused,
            )
        dropped = tuple(p for p in terms.paths(FieldAction.DROP) if _carries(record, p))
        if not dropped:
            return record
        data = record.model_dump()
        for path in dropped:
            _delete_at(data, path.split("."))
        try:
            return parse_record(data, context=f"{record_type.value} minimised under {agreement_id}")
        except RecordInvalid as exc:
            # A drop the model allows field by field may still break a cross-field rule
            # (a party needs a USCC or an id number): such a record cannot cross at all.
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} drops {', '.join(dropped)}, which leaves this "
                f"{record_type.value} invalid: {exc.message}",
                agreement_id=agreement_id,
                fields=dropped,
            ) from None

    def check_inbound(
        self,
        agreement_id: str,
        sender: str,
        receiver: str,
        record_type: RecordType,
        record: Record,
        *,
        now: dt.datetime,
        suite: str,
    ) -> Agreement:
        """Accept a received record under its named agreement, or :class:`AgreementRefused`.

        ``now`` is the time of receipt; ``suite`` the suite the envelope was signed with.
        A field the agreement drops or refuses must arrive without a value: a sender that
        failed to minimise is refused, not silently cleaned up.
        """
        agreement, terms = self._admit(
            agreement_id=agreement_id,
            sender=sender,
            receiver=receiver,
            record_type=record_type,
            record=record,
            now=now,
            suite=suite,
        )
        barred = tuple(
            p.path
            for p in terms.fields.values()
            if p.action is not FieldAction.ALLOW and _carries(record, p.path)
        )
        if barred:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} does not let {', '.join(barred)} cross in "
                f"{record_type.value} records from {sender} to {receiver}",
                agreement_id=agreement_id,
                fields=barred,
            )
        return agreement

    def default_agreement(
        self,
        sender: str,
        receiver: str,
        record_type: RecordType,
        now: dt.datetime,
        *,
        answers: OriginalType | None = None,
    ) -> Agreement:
        """The one agreement in force that covers this exchange, when the caller names none.

        For feedback pass ``answers`` (the original's type): a complaint's feedback and a
        referral's feedback usually travel under different agreements. More than one
        candidate is refused rather than guessed — the purpose differs between agreements.
        """
        covering = [
            a
            for a in self.agreements.values()
            if (terms := a.terms(sender, receiver, record_type)) is not None
            and (answers is None or answers in terms.answers)
        ]
        what = record_type.value + (f" on {answers.value}" if answers else "")
        in_force = sorted((a for a in covering if a.in_force(now)), key=lambda a: a.id)
        if len(in_force) == 1:
            return in_force[0]
        if len(in_force) > 1:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_AMBIGUOUS,
                f"{len(in_force)} agreements in force cover {what} from {sender} to "
                f"{receiver} ({', '.join(a.id for a in in_force)}): name one",
            )
        if covering:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_NOT_IN_FORCE,
                f"no agreement covering {what} from {sender} to {receiver} is in force on "
                f"{beijing_today(now).isoformat()} (Beijing): "
                + ", ".join(f"{a.id} {a.period()}" for a in covering),
            )
        raise AgreementRefused(
            RefusalReason.AGREEMENT_NONE_APPLIES,
            f"no agreement covers {what} from {sender} to {receiver}",
        )
